"""``recsys report``: the click-through of served lists per model version, from the event store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def report(
    model: Annotated[str, typer.Option("--model", help="registered model name")] = "recsys",
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="event store URL; default RECSYS_EVENTS_URL (environment or .env), else "
            "sqlite:///.recsys/events.db",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Click-through of the lists the service served, per model version: lists served, lists
    followed by a click or a purchase (events carrying their recommendation_id), and the ratio."""
    import json
    import sys

    from recsys_core.events.engine import safe_url
    from recsys_core.events.store import EventStore

    store = EventStore(url)
    try:
        rows = store.click_through(model)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(
            json.dumps(
                {"registered_model": model, "event_store": safe_url(store.url), "versions": rows}
            )
            + "\n"
        )
        return
    console = Console()
    if not rows:
        console.print(
            f"no list of {model!r} recorded in {safe_url(store.url)} yet: the service "
            "records every list it serves (POST /events links clicks to them)",
            highlight=False,
            soft_wrap=True,
        )
        return
    table = Table(title=f"click-through of {model!r} ({safe_url(store.url)})", title_justify="left")
    for name, justify in (
        ("version", "right"),
        ("lists served", "right"),
        ("clicked or bought", "right"),
        ("click-through", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            str(r["model_version"]), f"{r['served']:,}", f"{r['engaged']:,}", f"{r['ctr']:.1%}"
        )
    console.print(table)
