"""``recsys db``: the event store's schema (``recsys db upgrade``, ``recsys db current``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

db = typer.Typer(help="The event store's database: schema migrations.", no_args_is_help=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="database URL; default RECSYS_EVENTS_URL (environment or .env), "
        "else sqlite:///.recsys/events.db",
    ),
]


@db.command()
def upgrade(url: UrlOption = None) -> None:
    """Create or migrate the event store's tables to the latest revision (idempotent)."""
    from recsys_core.events.engine import events_url, safe_url
    from recsys_core.events.migrate import upgrade as run_upgrade

    target = url or events_url()
    revision = run_upgrade(target)
    Console().print(
        f"event store {safe_url(target)} at revision {revision}", highlight=False, soft_wrap=True
    )


@db.command()
def current(url: UrlOption = None) -> None:
    """The event store's schema revision, and the latest one this version of recsys ships."""
    from recsys_core.events.engine import events_url, safe_url
    from recsys_core.events.migrate import current as read_current
    from recsys_core.events.migrate import head

    target = url or events_url()
    now = read_current(target)
    latest = head()
    state = "up to date" if now == latest else "run `recsys db upgrade`"
    Console().print(
        f"event store {safe_url(target)}: revision {now or 'none'} (latest {latest}): {state}",
        highlight=False,
        soft_wrap=True,
    )
