"""The Great Expectations suite of the interaction table, built in code and run in memory.

One ephemeral context per process (no project folder, nothing written to disk), a pandas data
source with one dataframe asset and a whole-dataframe batch definition, and one expectation
suite rebuilt from the rules on every call. Data source and suite are registered with
``add_or_update``, so that repeated validations in a long-lived worker never fail on "already
exists"; a lock serialises them, as they share those names.

Great Expectations is imported here only, inside functions: its import takes seconds and the
library must stay importable without paying for it.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from recsys_core.columns import COLUMNS
from recsys_core.validation.quarantine import KEY, is_numeric
from recsys_core.validation.report import CheckResult, jsonable
from recsys_core.validation.rules import ValidationRules

log = logging.getLogger(__name__)

SUITE_NAME = "recsys-interactions"
DATA_SOURCE_NAME = "recsys"
ASSET_NAME = "interactions"
BATCH_DEFINITION_NAME = "whole-frame"
_META_KEY = "recsys_check"

RATING_TYPES = ["float64", "float32", "int64", "int32"]
TIMESTAMP_TYPES = ["int64", "int32", "uint32", "uint64"]

_lock = threading.Lock()
_context: Any = None

_QUARANTINE_HINT = "or set quarantine=True to set those rows aside"


@dataclass(frozen=True)
class CheckSpec:
    """One check: the expectation that runs it and the words that explain a failure."""

    name: str
    expectation: Any  # a great_expectations Expectation
    columns: tuple[str, ...]
    problem: str
    fix: str


def gx_module() -> Any:
    """Import Great Expectations with its analytics off (they retry forever offline)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def context() -> Any:
    """The process's ephemeral data context, created on first use, progress bars off."""
    global _context
    if _context is None:
        gx = gx_module()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        _context = ctx
    return _context


def build_checks(frame: pd.DataFrame, rules: ValidationRules) -> list[CheckSpec]:
    """The checks for ``frame`` under ``rules`` (``rules.max_timestamp`` must be resolved).

    Column checks on a missing column are left out (the column check already fails), and so
    are range checks on a non-numeric column (its type check fails).
    """
    gxe = gx_module().expectations
    present = set(frame.columns)
    missing = [c for c in COLUMNS if c not in present]

    def spec(name, expectation, columns, problem, fix):
        expectation.meta = {_META_KEY: name}
        return CheckSpec(name, expectation, tuple(columns), problem, fix)

    checks = [
        spec(
            "columns",
            gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMNS), exact_match=False),
            (),
            f"missing column(s) {missing!r}" if missing else "missing columns",
            "map the source's columns onto user, item, rating, timestamp "
            "(for example columns='user=userId,item=movieId')",
        )
    ]
    for col, types in (("rating", RATING_TYPES), ("timestamp", TIMESTAMP_TYPES)):
        if col in present:
            checks.append(
                spec(
                    f"{col}_type",
                    gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=types),
                    (col,),
                    f"column {col!r} has dtype {str(frame[col].dtype)!r}, not one of {types!r}",
                    f"convert {col!r} to numbers (schema.normalize_interactions does)",
                )
            )
    for col in COLUMNS:
        if col in present:
            checks.append(
                spec(
                    f"{col}_not_null",
                    gxe.ExpectColumnValuesToNotBeNull(column=col),
                    (col,),
                    f"null {col} values",
                    f"drop or repair those rows, {_QUARANTINE_HINT}",
                )
            )
    if "rating" in present and is_numeric(frame["rating"]):
        lo, hi = rules.rating_min, rules.rating_max
        checks.append(
            spec(
                "rating_in_scale",
                gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=lo, max_value=hi),
                ("rating",),
                f"ratings outside [{lo!r}, {hi!r}]",
                f"fix the data or set rating_min/rating_max to the source's scale "
                f"(--rating-min/--rating-max, or --set data.rating_min=... "
                f"data.rating_max=...), "
                f"{_QUARANTINE_HINT}",
            )
        )
    if "timestamp" in present and is_numeric(frame["timestamp"]):
        limit = rules.timestamp_limit()
        when = _utc_text(limit)
        checks.append(
            spec(
                "timestamp_not_in_future",
                gxe.ExpectColumnValuesToBeBetween(column="timestamp", max_value=limit),
                ("timestamp",),
                f"timestamps after {limit!r} ({when})",
                "timestamps must be epoch seconds (not milliseconds) in UTC; fix the data or set "
                f"max_timestamp, {_QUARANTINE_HINT}",
            )
        )
    if all(c in present for c in KEY):
        checks.append(
            spec(
                "unique_interactions",
                gxe.ExpectCompoundColumnsToBeUnique(column_list=list(KEY)),
                KEY,
                "rows rating the same (user, item) pair as another row",
                "apply a duplicates policy first: latest (the default of collect and of "
                "--duplicates), mean or refuse, see recsys_core.data.duplicates; "
                f"{_QUARANTINE_HINT} (the latest rating of each pair is kept)",
            )
        )
    checks.append(
        spec(
            "row_count",
            gxe.ExpectTableRowCountToBeBetween(min_value=rules.min_rows),
            (),
            f"fewer than {rules.min_rows!r} rows",
            "collect more data or lower min_rows",
        )
    )
    for col, minimum, what in (
        ("user", rules.min_users, "users"),
        ("item", rules.min_items, "items"),
    ):
        if col in present:
            checks.append(
                spec(
                    f"{col}_count",
                    gxe.ExpectColumnUniqueValueCountToBeBetween(column=col, min_value=minimum),
                    (col,),
                    f"fewer than {minimum!r} distinct {what}",
                    f"collect more data or lower min_{what}",
                )
            )
    return checks


def run_checks(frame: pd.DataFrame, rules: ValidationRules) -> tuple[list[CheckResult], str]:
    """Run the suite on ``frame``; the check results in suite order and the engine's name.

    ``rules.max_timestamp`` must be resolved, and ``frame`` must have a RangeIndex: the example
    rows are looked up by the positions Great Expectations reports.
    """
    gx = gx_module()
    checks = build_checks(frame, rules)
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": max(rules.sample_rows, 1),
    }
    with _lock:
        ctx = context()
        source = ctx.data_sources.add_or_update_pandas(DATA_SOURCE_NAME)  # comes back empty
        asset = source.add_dataframe_asset(ASSET_NAME)
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
        suite = ctx.suites.add_or_update(
            gx.ExpectationSuite(name=SUITE_NAME, expectations=[c.expectation for c in checks])
        )
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(suite, result_format=result_format)
    by_name = {r.expectation_config.meta.get(_META_KEY): r for r in outcome.results}
    results = [_check_result(spec, by_name.get(spec.name), frame, rules) for spec in checks]
    return results, f"great_expectations {gx.__version__}"


def _check_result(
    spec: CheckSpec, outcome: Any, frame: pd.DataFrame, rules: ValidationRules
) -> CheckResult:
    expectation = spec.expectation.expectation_type
    if outcome is None:  # cannot happen with a sound suite; fail loudly rather than pass
        return CheckResult(
            spec.name,
            expectation,
            spec.columns,
            False,
            spec.problem,
            spec.fix,
            error="no result came back for this expectation",
        )
    res = outcome.result or {}
    error = _error_text(outcome.exception_info)
    count = res.get("unexpected_count")
    samples: list[dict[str, Any]] = []
    note = ""
    if not outcome.success and count:
        positions = list(res.get("partial_unexpected_index_list") or [])[: rules.sample_rows]
        samples = [
            {"row": int(pos), **jsonable(rec)}
            for pos, rec in zip(
                positions, frame.iloc[positions].to_dict(orient="records"), strict=True
            )
        ]
        if spec.name == "unique_interactions":
            extra = int(frame.duplicated(subset=list(KEY), keep="first").sum())
            note = f"{extra:,} beyond one row per pair"
    percent = res.get("unexpected_percent")
    return CheckResult(
        name=spec.name,
        expectation=expectation,
        columns=spec.columns,
        success=bool(outcome.success),
        problem=spec.problem,
        fix=spec.fix,
        observed=jsonable(res.get("observed_value")),
        unexpected_count=None if count is None else int(count),
        unexpected_percent=None if percent is None else float(percent),
        samples=samples,
        note=note,
        error=error,
    )


def _utc_text(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):  # beyond the calendar datetime can show
        return "beyond year 9999"


def _error_text(info: Any) -> str:
    """The exception message in a result's ``exception_info``, flat or keyed by metric."""
    if not info:
        return ""
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = [
        str(e.get("exception_message") or "unknown error")
        for e in entries
        if isinstance(e, dict) and e.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages))
