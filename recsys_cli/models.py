"""``recsys models``: the model families, their serving roles and hyperparameters."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from recsys_cli.console import console


def models(as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False):
    """The available models, the serving roles each can fill, and their hyperparameters.

    A rating model competes for both champion aliases (champion-ranking for lists,
    champion-rating for /predict); a ranking-only model for champion-ranking only.
    """
    from recsys_core.models.registry import describe
    from recsys_core.tracking.registry import ROLE_ALIASES

    info = describe()
    for m in info:  # the roles each family declares, with their champion aliases
        m["roles"] = {r: ROLE_ALIASES[r] for r in m["capabilities"]["roles"]}
    if as_json:
        sys.stdout.write(json.dumps(info, default=str) + "\n")
        return
    for m in info:
        roles = ", ".join(f"{r} ({a})" for r, a in m["roles"].items())
        table = Table(title=f"{m['name']}: {m['summary']}\nroles: {roles}", title_justify="left")
        table.add_column("parameter")
        table.add_column("default")
        table.add_column("description")
        for p in m["params"]:
            table.add_row(p["name"], repr(p["default"]), p["description"])
        console.print(table)
