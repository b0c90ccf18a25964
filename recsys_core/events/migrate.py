"""Schema migrations of the event store, with Alembic, from the scripts shipped in the package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from recsys_core.events.engine import make_engine, safe_url, unreachable
from recsys_core.events.tables import VERSION_TABLE

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The revision the shipped migrations lead to."""
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current(url: str) -> str | None:
    """The revision of the event store at ``url`` (None: never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
    except OperationalError as exc:
        raise unreachable(url, exc, "read its schema revision") from exc
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the event store at ``url`` to ``revision`` (idempotent); returns the revision."""
    engine = make_engine(url)
    cfg = _config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            now = ctx.get_current_revision() or ""
    except OperationalError as exc:
        raise unreachable(url, exc, "migrate it") from exc
    finally:
        engine.dispose()
    log.info("event store %s at revision %s", safe_url(url), now)
    return now
