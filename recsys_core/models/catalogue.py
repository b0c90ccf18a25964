"""What every registered family can do, as one table: read from the declarations on the
classes (:class:`~recsys_core.models.base.Capabilities`), never written by hand. The README's
table of capabilities is this text (``tests/recsys_core/models/test_catalogue.py`` keeps the
two in step)."""

from __future__ import annotations

from recsys_core.models.registry import available, get_model_class

_YES, _NO = "yes", "-"


def capabilities_rows() -> list[tuple[str, ...]]:
    """One row per registered family: name, roles (rating when it predicts ratings), fold-in,
    factor scores, Spark, item metadata."""
    rows: list[tuple[str, ...]] = []
    for name in available():
        caps = get_model_class(name).capabilities
        spark = "fitted" if caps.fitted_in_spark else "scored" if caps.scored_in_spark else _NO
        rows.append(
            (
                f"`{name}`",
                ", ".join(caps.roles),
                caps.fold_in or _NO,
                _YES if caps.factor_scores else _NO,
                spark,
                _YES if caps.needs_item_metadata else _NO,
            )
        )
    return rows


def capabilities_table() -> str:
    """The README's table of what each family can do (markdown)."""
    head = "| model | roles | fold-in | scores from factors | Spark | needs item metadata |"
    lines = [head, "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in capabilities_rows()]
    return "\n".join(lines) + "\n"
