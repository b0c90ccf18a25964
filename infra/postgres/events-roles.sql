-- Least-privilege roles of the event store (PostgreSQL).
--
-- Run once as the database owner, after `recsys db upgrade` created the tables, in the event
-- store's database:
--
--     RECSYS_EVENTS_URL=postgresql://recsys_events_owner@db:5432/recsys_events recsys db upgrade
--     psql -h db -U recsys_events_owner -d recsys_events \
--          -v service_password="$EVENTS_SERVICE_PASSWORD" \
--          -v collect_password="$EVENTS_COLLECT_PASSWORD" -f infra/postgres/events-roles.sql
--
-- recsys_events_service (the recommendation service): INSERT and SELECT on the events and the
--   served lists, nothing else (no UPDATE, no DELETE, no DDL). SELECT is needed by
--   INSERT ... ON CONFLICT DO NOTHING RETURNING, the idempotent append.
-- recsys_events_collect (the training flow's collection): SELECT only.
-- Both read the tombstones (forgotten users, as keyed hashes) to drop those users.
-- The service reads the API keys (names, scopes, keyed hashes); `recsys keys` writes them as
--   the owner.
-- Schema changes, and `recsys forget` (DELETE of a user's events, tombstones, audit), stay with
-- the owner that runs `recsys db upgrade`.

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE recsys_events_service LOGIN PASSWORD %L', :'service_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'recsys_events_service') \gexec
SELECT format('CREATE ROLE recsys_events_collect LOGIN PASSWORD %L', :'collect_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'recsys_events_collect') \gexec

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM recsys_events_service, recsys_events_collect;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO recsys_events_service, recsys_events_collect;
GRANT USAGE ON SCHEMA public TO recsys_events_service, recsys_events_collect;

GRANT SELECT, INSERT ON events, served_recommendations TO recsys_events_service;
GRANT SELECT ON events, served_recommendations TO recsys_events_collect;
GRANT SELECT ON tombstones TO recsys_events_service, recsys_events_collect;
GRANT SELECT ON api_keys TO recsys_events_service;
-- the training run logs the forget requests since its previous run (ids hashed)
GRANT SELECT ON forget_audit TO recsys_events_collect;
-- the schema revision, so that the service can check it is up to date
GRANT SELECT ON recsys_events_alembic_version TO recsys_events_service, recsys_events_collect;
