from __future__ import annotations

import os
import subprocess

import psycopg2
import pytest
from sqlalchemy import create_engine, inspect

from recsys_core.events.migrate import MIGRATIONS, current, head, upgrade


def test_upgrade_creates_the_tables_once(store_url):
    assert current(store_url) is None
    assert upgrade(store_url) == head() == "0005"
    assert upgrade(store_url) == "0005"  # idempotent
    assert current(store_url) == "0005"
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg2://"))
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {
        "events",
        "served_recommendations",
        "api_keys",
        "recsys_events_alembic_version",
    } <= tables


def test_the_migrations_ship_inside_the_package():
    assert (MIGRATIONS / "env.py").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_*.py"))


def test_the_least_privilege_roles(pg_url, psql_client):
    """infra/postgres/events-roles.sql: the service inserts and reads, collection only reads."""
    from pathlib import Path

    upgrade(pg_url)
    sql = Path(__file__).parents[3] / "infra" / "postgres" / "events-roles.sql"
    out = subprocess.run(
        [psql_client, pg_url, "-f", str(sql)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EVENTS_SERVICE_PASSWORD": "s1", "EVENTS_COLLECT_PASSWORD": "c1"},
    )
    assert out.returncode == 0, out.stderr
    base, _, name = pg_url.rpartition("/")

    def run(role, statement):
        host = base.split("@", 1)[1]
        conn = psycopg2.connect(f"postgresql://{role}@{host}/{name}", connect_timeout=3)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    insert = (
        "INSERT INTO events VALUES ('e1','u','i',NULL,'click',1,NULL,1) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    )
    run("recsys_events_service", insert)
    run("recsys_events_service", "SELECT count(*) FROM events")
    run("recsys_events_collect", "SELECT count(*) FROM events")
    run("recsys_events_service", "SELECT count(*) FROM api_keys")  # checks the callers' keys
    for role, statement in (
        ("recsys_events_service", "UPDATE api_keys SET scopes = 'admin'"),
        ("recsys_events_service", "INSERT INTO api_keys VALUES ('k', 'd', 'admin', 1, NULL)"),
        ("recsys_events_collect", "SELECT count(*) FROM api_keys"),
        ("recsys_events_service", "DELETE FROM events"),
        ("recsys_events_service", "UPDATE events SET rating = 1"),
        ("recsys_events_service", "DROP TABLE events"),
        ("recsys_events_collect", insert),
    ):
        with pytest.raises(psycopg2.Error, match="permission denied|must be owner"):
            run(role, statement)


def test_role_passwords_come_from_the_environment_and_rotate(pg_url, psql_client):
    """No password on psql's command line; a second run with new passwords applies them."""
    from pathlib import Path

    upgrade(pg_url)
    sql = Path(__file__).parents[3] / "infra" / "postgres" / "events-roles.sql"
    assert "--set" not in sql.read_text() and "\\getenv service_password" in sql.read_text()

    def apply(service: str, collect: str | None) -> subprocess.CompletedProcess:
        env = {**os.environ, "EVENTS_SERVICE_PASSWORD": service}
        env.pop("EVENTS_COLLECT_PASSWORD", None)
        if collect is not None:
            env["EVENTS_COLLECT_PASSWORD"] = collect
        return subprocess.run(
            [psql_client, pg_url, "-f", str(sql)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    def hashes() -> dict[str, str]:
        conn = psycopg2.connect(pg_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN "
                    "('recsys_events_service', 'recsys_events_collect')"
                )
                return dict(cur.fetchall())
        finally:
            conn.close()

    missing = apply("rot-s1", None)
    assert missing.returncode != 0 and "EVENTS_COLLECT_PASSWORD is not set" in missing.stderr
    assert apply("rot-s1", "rot-c1").returncode == 0
    first = hashes()
    out = apply("rot-s2", "rot-c2")
    assert out.returncode == 0, out.stderr
    second = hashes()
    assert first["recsys_events_service"] != second["recsys_events_service"]
    assert first["recsys_events_collect"] != second["recsys_events_collect"]
    assert "rot-s2" not in out.stdout + out.stderr


def test_lists_served_before_0005_keep_the_empty_sender_and_count_its_events(store_url):
    from sqlalchemy import text

    from recsys_core.events import EventStore

    upgrade(store_url, "0004")
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO served_recommendations (recommendation_id, user_id, "
                "registered_model, model_version, alias, k, items, served_at) VALUES "
                "('old', 'u1', 'recsys', '1', NULL, 1, '[\"i1\"]', 1)"
            )
        )
    engine.dispose()
    assert upgrade(store_url) == "0005"
    store = EventStore(store_url)
    event = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "click"}
    store.append([{**event, "recommendation_id": "old"}], sender="web")
    assert store.click_through("recsys")[0]["engaged"] == 0  # another sender's click
    store.append([{**event, "recommendation_id": "old"}])  # the empty sender's, as the list's
    assert store.click_through("recsys")[0]["engaged"] == 1
    store.close()
