"""The validation report: every check with its counts and example rows, warnings, quarantine.

The report is plain data. ``to_dict`` is JSON-serialisable (for MLflow), ``to_markdown`` is a
readable page (for a Prefect markdown artifact) and ``summary`` is one paragraph for error
messages.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# example rows shown inline in ``summary``: enough to recognise the problem, short enough to log
_SUMMARY_SAMPLES = 2


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation of the suite.

    Attributes
    ----------
    name
        Short stable id of the check (``rating_in_scale``).
    expectation
        The Great Expectations expectation type (``expect_column_values_to_be_between``).
    columns
        The columns it looks at; empty for table-level checks on the row count.
    success
        Whether the data meets it.
    problem
        What a failure means, in words (``ratings outside [1.0, 5.0]``).
    fix
        How to fix a failure.
    observed
        The observed value of table-level and aggregate checks (row count, distinct users).
    unexpected_count, unexpected_percent
        Rows breaking a row-level check (None for table-level checks). The percent is Great
        Expectations' own: of the non-null values for range and uniqueness checks. The
        uniqueness check counts every row of a repeated pair, the one to keep included.
    samples
        A few breaking rows, each a dict with its ``row`` position and the row's values.
    note
        Extra detail on a failure (rows beyond one per repeated pair, ...).
    error
        Why Great Expectations could not evaluate the check, if it could not.
    """

    name: str
    expectation: str
    columns: tuple[str, ...]
    success: bool
    problem: str
    fix: str
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    error: str = ""

    def describe(self) -> str:
        """One sentence on a failure: what, how many, examples and how to fix it."""
        text = self.problem
        if self.error:
            text += f" (could not be checked: {self.error})"
        elif self.unexpected_count is not None:
            text += f": {_rows(self.unexpected_count)}"
            if self.unexpected_percent is not None:
                text += f" ({self.unexpected_percent:.3g}%)"
            if self.note:
                text += f", {self.note}"
            if self.samples:
                shown = "; ".join(_sample_text(s) for s in self.samples[:_SUMMARY_SAMPLES])
                text += f", e.g. {shown}"
        elif self.observed is not None:
            text += f" (observed {self.observed!r})"
        return f"{text}; {self.fix}"


@dataclass(frozen=True)
class ValidationWarning:
    """A property of the data worth a look that does not fail it (sparse users, ...)."""

    name: str
    message: str
    count: int
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Everything the Validate stage found out about one interaction table."""

    success: bool
    checks: list[CheckResult]
    warnings: list[ValidationWarning] = field(default_factory=list)
    n_rows: int = 0
    n_users: int | None = None
    n_items: int | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    engine: str = ""

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks, in suite order."""
        return [c for c in self.checks if not c.success]

    def check(self, name: str) -> CheckResult:
        """The check called ``name``; KeyError lists the names when there is none."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain Python types, NaN as None)."""
        return jsonable(asdict(self))

    def summary(self) -> str:
        """One paragraph: the verdict, then each failed check with its count and its fix."""
        shape = f"{self.n_rows:,} rows"
        if self.n_users is not None and self.n_items is not None:
            shape += f", {self.n_users:,} users, {self.n_items:,} items"
        text = ""
        if self.quarantined:
            text = f" after quarantining {_counts_text(self.quarantined)}"
        failures = self.failures
        if not failures:
            return f"all {len(self.checks)} checks passed on {shape}{text}."
        parts = " | ".join(c.describe() for c in failures)
        return f"{len(failures)} of {len(self.checks)} checks failed on {shape}{text}: {parts}"

    def to_markdown(self) -> str:
        """A Markdown page: verdict, table of checks, failures with examples, warnings."""
        verdict = "passed" if self.success else "FAILED"
        lines = [f"# Data validation {verdict}", ""]
        shape = f"**{self.n_rows:,}** rows"
        if self.n_users is not None and self.n_items is not None:
            shape += f", **{self.n_users:,}** users, **{self.n_items:,}** items"
        lines += [shape + (f" (checked with {self.engine})" if self.engine else "") + ".", ""]
        if self.quarantined:
            lines += [f"Quarantined before validation: {_counts_text(self.quarantined)}.", ""]
        lines += [
            "| Check | Columns | Result | Unexpected | % | Observed |",
            "|---|---|---|---:|---:|---|",
        ]
        for c in self.checks:
            pct = "" if c.unexpected_percent is None else f"{c.unexpected_percent:.3g}"
            count = "" if c.unexpected_count is None else f"{c.unexpected_count:,}"
            observed = "" if c.observed is None else _cell(repr(c.observed))
            result = "pass" if c.success else "**FAIL**"
            lines.append(
                f"| `{c.name}` ({_cell(c.expectation)}) | {', '.join(c.columns)} | {result} "
                f"| {count} | {pct} | {observed} |"
            )
        for c in self.failures:
            lines += ["", f"## {c.name}", "", _cell(c.describe())]
            if c.samples:
                lines += [""] + _table(c.samples)
        if self.warnings:
            lines += ["", "## Warnings", ""]
            for w in self.warnings:
                lines.append(f"- {_cell(w.message)}")
        return "\n".join(lines) + "\n"


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{_rows(n)} ({reason})" for reason, n in counts.items())


def _sample_text(sample: dict[str, Any]) -> str:
    values = ", ".join(f"{k} {v!r}" for k, v in sample.items() if k != "row")
    return f"row {sample.get('row')!r} ({values})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(_cell(repr(r.get(k))) for k in keys) + " |" for r in rows]
    return out


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python ones, NaN and NA as None, others as str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if _is_missing(value):
        return None
    return str(value)


def _is_missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN, NaT, pd.NA all differ from themselves or raise
    except (TypeError, ValueError):
        return True
