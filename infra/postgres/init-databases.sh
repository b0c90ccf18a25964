#!/bin/sh
# First start of the postgres volume: one role and one database per server (MLflow, Prefect), and
# the event store's owner and database (its tables and the roles of the service and of the
# collection come from the events-migrate and events-roles jobs).
# Runs once, from /docker-entrypoint-initdb.d; passwords come from the environment (.env).
set -eu

create() {
    role="$1"; password="$2"; database="$3"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$role" -v password="$password" -v database="$database" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') \gexec
SQL
}

create "$MLFLOW_DB_USER" "$MLFLOW_DB_PASSWORD" "$MLFLOW_DB_NAME"
create "$PREFECT_DB_USER" "$PREFECT_DB_PASSWORD" "$PREFECT_DB_NAME"
create "$EVENTS_DB_USER" "$EVENTS_DB_PASSWORD" "$EVENTS_DB_NAME"
