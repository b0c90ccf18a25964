-- Least-privilege roles of the event store (PostgreSQL).
--
-- Run once as the database owner, after `recsys db upgrade` created the tables, in the event
-- store's database:
--
--     RECSYS_EVENTS_URL=postgresql://recsys_events_owner@db:5432/recsys_events recsys db upgrade
--     EVENTS_SERVICE_PASSWORD=... EVENTS_COLLECT_PASSWORD=... \
--         psql -h db -U recsys_events_owner -d recsys_events -f infra/postgres/events-roles.sql
--
-- The passwords come from the environment (psql's \getenv, psql 15 or later), never from the
-- command line, where `ps` shows them to every user of the machine. Run again with new
-- passwords, it rotates them (ALTER ROLE ... PASSWORD when the role exists).
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

\getenv service_password EVENTS_SERVICE_PASSWORD
\getenv collect_password EVENTS_COLLECT_PASSWORD
\if :{?service_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'EVENTS_SERVICE_PASSWORD is not set in the environment of psql'; END $$;
\endif
\if :{?collect_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'EVENTS_COLLECT_PASSWORD is not set in the environment of psql'; END $$;
\endif

-- created, or given the password of this run (a rotated password is applied)
SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = 'recsys_events_service')
                   THEN 'ALTER ROLE recsys_events_service LOGIN PASSWORD %L'
                   ELSE 'CREATE ROLE recsys_events_service LOGIN PASSWORD %L' END,
              :'service_password') \gexec
SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = 'recsys_events_collect')
                   THEN 'ALTER ROLE recsys_events_collect LOGIN PASSWORD %L'
                   ELSE 'CREATE ROLE recsys_events_collect LOGIN PASSWORD %L' END,
              :'collect_password') \gexec

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
