"""The Validate stage: run the suite, add the warnings, fail or quarantine.

``validate`` judges a table as it is; ``screen`` first quarantines the rows that break a
row-level rule when ``rules.quarantine`` is set, then validates what is left.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

import pandas as pd

from recsys_core.exceptions import DataValidationError
from recsys_core.validation.quarantine import quarantine
from recsys_core.validation.report import ValidationReport, ValidationWarning, jsonable
from recsys_core.validation.rules import ValidationRules
from recsys_core.validation.suite import run_checks

log = logging.getLogger(__name__)


class Screened(NamedTuple):
    """What ``screen`` returns; unpacks as ``clean, quarantined, report``."""

    clean: pd.DataFrame
    """The table to go on with: the input, less the quarantined rows."""
    quarantined: pd.DataFrame
    """The rows set aside, with a ``reason`` column (empty without quarantine)."""
    report: ValidationReport
    """The validation of ``clean``, with the quarantined counts."""


def validate(
    frame: pd.DataFrame,
    rules: ValidationRules | None = None,
    *,
    quarantined: dict[str, int] | None = None,
    raise_on_failure: bool = False,
) -> ValidationReport:
    """Validate an interaction table against the suite built from ``rules``.

    Parameters
    ----------
    frame
        The interaction table (``user``, ``item``, ``rating``, ``timestamp``).
    rules
        The thresholds; the defaults when None. ``rules.quarantine`` is not applied here: see
        ``screen`` and ``quarantine``.
    quarantined
        Rows already set aside per reason, recorded in the report.
    raise_on_failure
        Raise ``DataValidationError`` (carrying the report) when a check fails.

    Returns
    -------
    ValidationReport
        Every check with its outcome, the sparsity warnings and the table's shape.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"validate expects a pandas DataFrame, got {type(frame).__name__}")
    rules = (rules or ValidationRules()).resolved()
    started = time.perf_counter()
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)  # example rows are looked up by position
    checks, engine = run_checks(frame, rules)
    warnings, n_users, n_items = sparsity_warnings(frame, rules)
    report = ValidationReport(
        success=all(c.success for c in checks),
        checks=checks,
        warnings=warnings,
        n_rows=len(frame),
        n_users=n_users,
        n_items=n_items,
        quarantined=dict(quarantined or {}),
        rules=rules.model_dump(),
        engine=engine,
    )
    log.info(
        "validated %d rows in %.2fs: %s",
        len(frame),
        time.perf_counter() - started,
        "passed" if report.success else f"{len(report.failures)} check(s) failed",
    )
    for w in warnings:
        log.warning("%s", w.message)
    if raise_on_failure:
        raise_for_failures(report)
    return report


def raise_for_failures(report: ValidationReport) -> None:
    """Raise ``DataValidationError`` listing each failed check, its count and its fix."""
    if not report.success:
        raise DataValidationError(f"data validation failed: {report.summary()}", report=report)


def screen(
    frame: pd.DataFrame,
    rules: ValidationRules | None = None,
    *,
    raise_on_failure: bool = False,
) -> Screened:
    """Quarantine (when ``rules.quarantine``) then validate: the whole Validate stage.

    Row-level failures are set aside and counted in the report; table-level failures still fail
    the report (and raise with ``raise_on_failure``).
    """
    rules = (rules or ValidationRules()).resolved()
    if rules.quarantine:
        clean, rows, counts = quarantine(frame, rules)
    else:
        clean, rows, counts = frame, frame.iloc[:0].assign(reason=pd.Series(dtype=object)), {}
    report = validate(clean, rules, quarantined=counts, raise_on_failure=raise_on_failure)
    return Screened(clean, rows, report)


def sparsity_warnings(
    frame: pd.DataFrame, rules: ValidationRules
) -> tuple[list[ValidationWarning], int | None, int | None]:
    """Warnings on users and items below their interaction minimum; distinct user/item counts."""
    warnings: list[ValidationWarning] = []
    distinct: dict[str, int | None] = {"user": None, "item": None}
    for col, minimum in (
        ("user", rules.min_interactions_per_user),
        ("item", rules.min_interactions_per_item),
    ):
        if col not in frame.columns:
            continue
        counts = frame[col].value_counts()
        distinct[col] = len(counts)
        low = counts[counts < minimum]
        if low.empty:
            continue
        low = low.sort_values(kind="stable")
        examples = [
            {col: jsonable(key), "interactions": int(n)}
            for key, n in low.head(rules.sample_rows).items()
        ]
        shown = ", ".join(f"{e[col]!r} ({e['interactions']})" for e in examples)
        share = 100.0 * len(low) / len(counts)
        warnings.append(
            ValidationWarning(
                name=f"sparse_{col}s",
                message=(
                    f"{len(low):,} of {len(counts):,} {col}s ({share:.3g}%) have fewer than "
                    f"{minimum} interactions, e.g. {shown}; models learn little about them "
                    f"(min_interactions_per_{col} sets this threshold)"
                ),
                count=len(low),
                examples=examples,
            )
        )
    return warnings, distinct["user"], distinct["item"]
