"""Options shared by the commands that start a flow, and their reading into the flow's
parameters (``--param``, ``--set section.field=value``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from recsys_cli.console import EXIT_BAD_INPUT, fail
from recsys_core.exceptions import RecsysError

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="model hyperparameter key=value (repeatable)"),
]


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="any run setting as section.field=value, e.g. "
                 "gate.guard_tolerance=0.02 or validation.min_rows=50 (repeatable; values are "
                 "JSON or plain text)"),
]


def drop_unset(values: dict) -> dict:
    """The options given on the command line (None: not given, the run's default applies)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = drop_unset(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


def assign(raw: dict, assignment: str) -> None:
    """Apply ``section.field=value`` (``value`` read as JSON, else kept as text) to ``raw``."""
    path, sep, text = assignment.partition("=")
    keys = [k.strip() for k in path.split(".")]
    if not sep or not all(keys):
        raise RecsysError(f"bad --set {assignment!r}; expected section.field=value, such as "
                          "gate.min_improvement=0.01")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    node = raw
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise RecsysError(f"bad --set {assignment!r}: {key!r} is not a section")
    node[keys[-1]] = value


def validated(model: type[M], raw: dict) -> M:
    """``raw`` as the flow's parameters ``model``; invalid settings exit 2, named one a line."""
    import pydantic

    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        fail(_pydantic_message(exc), EXIT_BAD_INPUT)
        raise  # not reached: fail exits


def _pydantic_message(exc) -> str:
    """One line per invalid setting, named by its dotted path (``split.test_fraction``)."""
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        parts.append(f"{where}: {msg}" if where else msg)
    return "invalid run settings: " + "; ".join(parts)

