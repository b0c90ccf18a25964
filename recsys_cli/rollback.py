"""``recsys rollback``: a role's champion alias back to the version it replaced."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from recsys_cli.console import console, fail
from recsys_core.exceptions import RecsysError

Role = Literal["ranking", "rating"]


def rollback(
    registered_model: str = "recsys",
    role: Annotated[
        Role,
        typer.Option(
            help="the role whose champion moves back: ranking "
            "(champion-ranking, lists) or rating (champion-rating, "
            "/predict)"
        ),
    ] = "ranking",
) -> None:
    """Move a role's champion alias back to the version it replaced (default: ranking)."""
    from recsys_core.tracking import mlflow_run, registry

    mlflow_run.configure()
    alias = registry.alias_of(role)
    try:
        old, new = registry.rollback(registered_model, alias=alias)
    except RecsysError as exc:
        fail(str(exc), code=1)
    console.print(
        f"{registered_model}: {alias} moved from version {old.version} back to "
        f"version {new.version}"
    )
