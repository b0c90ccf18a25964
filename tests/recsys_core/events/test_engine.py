"""The PostgreSQL driver chosen for URLs that name none."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import ArgumentError

from recsys_core.events.engine import make_engine, with_psycopg2


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://svc@db:5432/events", "postgresql+psycopg2"),
        ("postgres://svc@db/events", "postgresql+psycopg2"),
        ("postgresql+psycopg://svc@db/events", "postgresql+psycopg"),  # chosen by the user: kept
        ("postgresql+psycopg2://svc@db/events", "postgresql+psycopg2"),
        ("sqlite:///x/events.db", "sqlite"),
    ],
)
def test_with_psycopg2_names_the_driver_only_when_none_is_given(url, driver):
    assert with_psycopg2(url).drivername == driver


def test_with_psycopg2_keeps_every_other_part_of_the_url():
    url = "postgres://svc:s3cr%40t@db.example:6543/recsys?sslmode=require"
    assert with_psycopg2(url).render_as_string(hide_password=False) == (
        "postgresql+psycopg2://svc:s3cr%40t@db.example:6543/recsys?sslmode=require"
    )


def test_a_postgresql_engine_uses_psycopg2_and_a_non_url_is_refused():
    engine = make_engine("postgresql://svc@127.0.0.1:1/events")
    assert engine.driver == "psycopg2"
    engine.dispose()
    with pytest.raises(ArgumentError):
        with_psycopg2("not a url")
