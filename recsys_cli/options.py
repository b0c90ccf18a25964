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
    typer.Option(
        "--set",
        help="any run setting as section.field=value, e.g. "
        "gate.guard_tolerance=0.02 or validation.min_rows=50 (repeatable; values are "
        "JSON or plain text)",
    ),
]


# The data options of every command that collects data (recsys train, recsys tune): the same
# names, help and meaning; `--set data.field=value` reaches every other field of the section.
SourceOpt = Annotated[
    str | None,
    typer.Option(
        help="synthetic[:size], movielens-100k..., a file, s3://, postgresql://...?table=events "
        "(default: synthetic)"
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        help="database sources: 'last' (only the rows after the last collection, merged with its "
        "snapshot) or a watermark TIMESTAMP[:ID]"
    ),
]
SyntheticSizeOpt = Annotated[
    str | None, typer.Option(help="tiny, small, 100k, 1m, 10m, 25m (default: 100k)")
]
SeedOpt = Annotated[
    int | None,
    typer.Option(help="seed of the synthetic data and of the random split (default: 42)"),
]
ColumnsOpt = Annotated[
    str | None, typer.Option(help="the file's column names: user=..,item=..,rating=..,timestamp=..")
]
DuplicatesOpt = Annotated[
    str | None,
    typer.Option(help="repeated (user, item) pairs: latest, mean or refuse (default: latest)"),
]
RatingMinOpt = Annotated[
    float | None, typer.Option(help="lowest valid rating of the source's scale (default: 1)")
]
RatingMaxOpt = Annotated[
    float | None, typer.Option(help="highest valid rating of the source's scale (default: 5)")
]


def data_section(
    *,
    source: str | None,
    since: str | None,
    synthetic_size: str | None,
    seed: int | None,
    columns: str | None,
    duplicates: str | None,
    rating_min: float | None,
    rating_max: float | None,
) -> dict:
    """The ``data`` section from the data options (None: not given)."""
    return {
        "source": source,
        "since": since,
        "synthetic_size": synthetic_size,
        "seed": seed,
        "columns": columns,
        "duplicates": duplicates,
        "rating_min": rating_min,
        "rating_max": rating_max,
    }


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
        raise RecsysError(
            f"bad --set {assignment!r}; expected section.field=value, such as "
            "gate.min_improvement=0.01"
        )
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
    """One line per invalid setting, named by its dotted path (``split.test_fraction``), in
    words (pydantic's own wording, without its links: ``recsys_core.validation_errors``)."""
    from recsys_core.validation_errors import in_words

    return "invalid run settings: " + in_words(exc)
