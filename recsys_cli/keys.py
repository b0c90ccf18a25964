"""``recsys keys``: the API keys of the service (``recsys_core.events.keys``): ``create`` prints
a new key once, ``list`` shows names and scopes (never a key), ``revoke`` ends a key."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

keys = typer.Typer(
    help="API keys of the service (who may call it, with which scopes).", no_args_is_help=True
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="event store URL (the keys live in its database); default "
        "RECSYS_EVENTS_URL (environment or .env), else sqlite:///.recsys/events.db",
    ),
]


def _store(url: str | None):
    from recsys_core.events.keys import KeyStore

    return KeyStore(url)


@keys.command()
def create(
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="who holds the key, e.g. batch-flow; "
            "also the sender identity of the events it stores",
        ),
    ],
    scopes: Annotated[
        str,
        typer.Option(
            "--scopes",
            help="comma-separated: recommend (lists, similar items, predictions), "
            "ingest (POST /events), admin (/model, /metrics, tombstone refresh), explain "
            "(explain=true, which reveals a user's history)",
        ),
    ],
    url: UrlOption = None,
    from_env: Annotated[
        str | None,
        typer.Option(
            "--from-env",
            help="register the key held by this environment variable (e.g. "
            "RECSYS_SERVE_API_KEY of a deployment's .env) instead of making one; idempotent, and "
            "the key is not printed",
        ),
    ] = None,
) -> None:
    """Make a key and print it, once: only a keyed hash of it is stored."""
    import os

    from recsys_core.events.keys import check_name, parse_scopes
    from recsys_core.exceptions import ConfigError

    check_name(name)
    wanted = parse_scopes(scopes)  # refused before the database is touched
    given = None
    if from_env is not None:
        given = os.environ.get(from_env)
        if not given:
            raise ConfigError(
                f"--from-env {from_env}: the variable is not set; set it (e.g. in "
                ".env) to rsk_ followed by 32 or more random characters"
            )
    store = _store(url)
    try:
        secret = store.create(name, wanted, given)
    finally:
        store.close()
    if given is not None:
        Console(stderr=True).print(
            f"key {name!r} of {from_env} registered with scopes {', '.join(sorted(wanted))}",
            highlight=False,
        )
        return
    sys.stdout.write(secret + "\n")  # alone on stdout: KEY=$(recsys keys create ...)
    Console(stderr=True).print(
        f"key {name!r} made with scopes {', '.join(sorted(wanted))}; it is shown only now: "
        "keep it (callers send it as `Authorization: Bearer <key>`)",
        highlight=False,
        soft_wrap=True,
    )


@keys.command("list")
def list_keys(
    url: UrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """The keys: name, scopes, when made, whether revoked (never the key)."""
    store = _store(url)
    try:
        found = store.list()
    finally:
        store.close()
    rows = [
        {
            "name": k.name,
            "scopes": sorted(k.scopes),
            "created": _iso(k.created_at),
            "revoked": _iso(k.revoked_at) if k.revoked_at is not None else None,
        }
        for k in found
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not rows:
        Console().print(
            "no API keys yet: `recsys keys create --name NAME --scopes a,b`", highlight=False
        )
        return
    table = Table("name", "scopes", "created", "state")
    for r in rows:
        table.add_row(
            r["name"],
            ",".join(r["scopes"]),
            r["created"],
            f"revoked {r['revoked']}" if r["revoked"] else "active",
        )
    Console().print(table)


@keys.command()
def revoke(
    name: Annotated[str, typer.Argument(help="the key's name (recsys keys list)")],
    url: UrlOption = None,
) -> None:
    """Revoke a key: every worker of the service refuses it within RECSYS_SERVE_KEY_CACHE_S
    seconds (default 5)."""
    store = _store(url)
    try:
        key = store.revoke(name)
    finally:
        store.close()
    Console().print(
        f"key {key.name!r} revoked at {_iso(key.revoked_at or 0)}; the service "
        "refuses it within RECSYS_SERVE_KEY_CACHE_S seconds (default 5)",
        highlight=False,
        soft_wrap=True,
    )


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
