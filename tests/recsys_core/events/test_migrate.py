from __future__ import annotations

import subprocess

import psycopg2
import pytest
from sqlalchemy import create_engine, inspect

from recsys_core.events.migrate import MIGRATIONS, current, head, upgrade


def test_upgrade_creates_the_tables_once(store_url):
    assert current(store_url) is None
    assert upgrade(store_url) == head() == "0002"
    assert upgrade(store_url) == "0002"  # idempotent
    assert current(store_url) == "0002"
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg2://"))
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"events", "served_recommendations", "recsys_events_alembic_version"} <= tables


def test_the_migrations_ship_inside_the_package():
    assert (MIGRATIONS / "env.py").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_*.py"))


def test_the_least_privilege_roles(pg_url, psql_client):
    """infra/postgres/events-roles.sql: the service inserts and reads, collection only reads."""
    from pathlib import Path

    upgrade(pg_url)
    sql = Path(__file__).parents[3] / "infra" / "postgres" / "events-roles.sql"
    out = subprocess.run([psql_client, pg_url, "-v", "service_password=s1", "-v",
                          "collect_password=c1", "-f", str(sql)],
                         capture_output=True, text=True, timeout=60)
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

    insert = ("INSERT INTO events VALUES ('e1','u','i',NULL,'click',1,NULL,1) "
              "ON CONFLICT DO NOTHING RETURNING event_id")
    run("recsys_events_service", insert)
    run("recsys_events_service", "SELECT count(*) FROM events")
    run("recsys_events_collect", "SELECT count(*) FROM events")
    for role, statement in (("recsys_events_service", "DELETE FROM events"),
                            ("recsys_events_service", "UPDATE events SET rating = 1"),
                            ("recsys_events_service", "DROP TABLE events"),
                            ("recsys_events_collect", insert)):
        with pytest.raises(psycopg2.Error, match="permission denied|must be owner"):
            run(role, statement)
