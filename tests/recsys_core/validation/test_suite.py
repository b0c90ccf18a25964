"""The Great Expectations suite: each failure mode is named, counted and explained."""

import json

import pandas as pd
import pytest

from recsys_core.exceptions import DataValidationError
from recsys_core.validation import (
    ValidationRules,
    raise_for_failures,
    validate,
)

RULES = ValidationRules(max_timestamp=2_000_000_000)


def failed(report):
    return {c.name: c for c in report.failures}


def test_valid_synthetic_data_passes_every_check(frame):
    report = validate(frame, RULES)
    assert report.success, report.summary()
    assert report.failures == []
    assert report.n_rows == len(frame)
    assert report.n_users == frame["user"].nunique()
    assert report.n_items == frame["item"].nunique()
    assert {c.name for c in report.checks} == {
        "columns",
        "rating_type",
        "timestamp_type",
        "user_not_null",
        "item_not_null",
        "rating_not_null",
        "timestamp_not_null",
        "rating_in_scale",
        "timestamp_not_in_future",
        "unique_interactions",
        "row_count",
        "user_count",
        "item_count",
    }
    assert report.check("rating_in_scale").expectation == "expect_column_values_to_be_between"
    assert report.check("row_count").observed == len(frame)
    assert report.summary().startswith("all 13 checks passed")
    raise_for_failures(report)  # no error


def test_rating_outside_the_scale_is_counted_with_examples(frame):
    frame.loc[[3, 10, 20], "rating"] = 7.0
    report = validate(frame, RULES)
    assert not report.success
    assert set(failed(report)) == {"rating_in_scale"}
    check = report.check("rating_in_scale")
    assert check.expectation == "expect_column_values_to_be_between"
    assert check.columns == ("rating",)
    assert check.unexpected_count == 3
    assert check.unexpected_percent == pytest.approx(300 / len(frame))
    assert [s["row"] for s in check.samples] == [3, 10, 20]
    assert all(s["rating"] == 7.0 for s in check.samples)
    assert check.samples[0]["user"] == frame.loc[3, "user"]


def test_the_error_message_names_each_failure_its_count_and_the_fix(frame):
    frame.loc[[3, 10, 20], "rating"] = 7.0
    frame.loc[5, "user"] = None
    with pytest.raises(DataValidationError) as info:
        validate(frame, RULES, raise_on_failure=True)
    message = str(info.value)
    assert message.startswith("data validation failed: 2 of 13 checks failed")
    assert "ratings outside [1.0, 5.0]: 3 rows" in message
    assert "rating 7.0" in message and "row 3" in message
    assert "set rating_min/rating_max" in message
    assert "null user values: 1 row" in message
    assert "quarantine=True" in message
    assert info.value.report.check("user_not_null").unexpected_count == 1


def test_null_user_is_detected(frame):
    frame.loc[[0, 7], "user"] = None
    check = failed(validate(frame, RULES))["user_not_null"]
    assert check.expectation == "expect_column_values_to_not_be_null"
    assert check.unexpected_count == 2
    assert [s["row"] for s in check.samples] == [0, 7]
    assert check.samples[0]["user"] is None


def test_future_timestamp_is_detected_against_now_by_default(frame):
    frame.loc[4, "timestamp"] = 4_000_000_000  # year 2096
    frame.loc[9, "timestamp"] = 1_700_000_000_000  # milliseconds
    report = validate(frame)
    check = failed(report)["timestamp_not_in_future"]
    assert check.unexpected_count == 2
    assert "milliseconds" in check.fix
    assert report.rules["max_timestamp"] is not None  # resolved to the time of validation
    # an explicit limit moves the boundary
    assert validate(frame, ValidationRules(max_timestamp=5_000_000_000_000)).success


def test_duplicates_count_every_row_of_a_repeated_pair(frame):
    # a pair rated again later is a repeat too: the duplicates policy decides, not validation
    again = frame.iloc[[1, 2]].assign(timestamp=frame["timestamp"].iloc[[1, 2]] + 60)
    dup = pd.concat([frame, again], ignore_index=True)
    check = failed(validate(dup, RULES))["unique_interactions"]
    assert check.expectation == "expect_compound_columns_to_be_unique"
    assert check.columns == ("user", "item")
    assert check.unexpected_count == 4  # both rows of two pairs
    assert check.note == "2 beyond one row per pair"
    assert "apply a duplicates policy first" in check.fix and "--duplicates" in check.fix


def test_validation_passes_what_the_duplicates_policy_returns(frame):
    from recsys_core.data.duplicates import resolve_duplicates

    again = frame.iloc[[1, 2]].assign(timestamp=frame["timestamp"].iloc[[1, 2]] + 60)
    dup = pd.concat([frame, again], ignore_index=True)
    for policy in ("latest", "mean"):
        resolved, dropped = resolve_duplicates(dup, policy)
        assert dropped == 2 and validate(resolved, RULES).success


def test_allow_duplicates_is_gone():
    # one policy for repeated pairs, set on the data (collect, --duplicates), not here
    with pytest.raises(ValueError, match="allow_duplicates"):
        ValidationRules(allow_duplicates=True)


def test_missing_column_fails_without_errors_from_its_column_checks(frame):
    report = validate(frame.drop(columns=["rating"]), RULES)
    assert set(failed(report)) == {"columns"}
    check = report.check("columns")
    assert check.expectation == "expect_table_columns_to_match_set"
    assert "missing column(s) ['rating']" in check.describe()
    assert not any(c.name.startswith("rating") for c in report.checks)


def test_non_numeric_rating_fails_its_type_check(frame):
    frame["rating"] = frame["rating"].astype(str)
    report = validate(frame, RULES)
    assert set(failed(report)) == {"rating_type"}
    assert report.check("rating_type").expectation == "expect_column_values_to_be_in_type_list"


def test_too_few_rows_users_and_items(frame):
    report = validate(frame.head(50), RULES)
    assert set(failed(report)) == {"row_count"}
    assert report.check("row_count").observed == 50
    assert "fewer than 100 rows" in report.summary()
    one_user = frame[frame["user"] == frame["user"].iloc[0]]
    report = validate(one_user, RULES.model_copy(update={"min_rows": 1}))
    assert set(failed(report)) == {"user_count"}
    assert report.check("user_count").observed == 1


def test_empty_frame_fails_the_table_checks(frame):
    report = validate(frame.iloc[:0], RULES)
    assert set(failed(report)) == {"row_count", "user_count", "item_count"}
    assert report.n_rows == 0
    assert report.check("user_not_null").success  # no row can break a row-level check


def test_repeated_calls_in_one_process_work_and_follow_the_rules(frame):
    for _ in range(3):
        assert validate(frame, RULES).success
    strict = RULES.model_copy(update={"rating_max": 4.0})
    assert validate(frame, strict).check("rating_in_scale").unexpected_count == int(
        (frame["rating"] > 4.0).sum()
    )
    assert validate(frame, RULES).success  # the suite was replaced, not accumulated


def test_a_non_default_index_still_gives_row_positions(frame):
    frame.index = frame.index * 10 + 5
    frame.iloc[2, frame.columns.get_loc("rating")] = 0.0
    check = validate(frame, RULES).check("rating_in_scale")
    assert [s["row"] for s in check.samples] == [2]


def test_sparse_users_and_items_warn_without_failing(frame):
    rare = pd.DataFrame(
        {"user": ["lonely"], "item": ["odd"], "rating": [3.0], "timestamp": [1_600_000_000]}
    )
    report = validate(pd.concat([frame, rare], ignore_index=True), RULES)
    assert report.success
    by_name = {w.name: w for w in report.warnings}
    assert by_name["sparse_users"].count == 1
    assert by_name["sparse_users"].examples == [{"user": "lonely", "interactions": 1}]
    assert "fewer than 5 interactions" in by_name["sparse_users"].message
    assert {"item": "odd", "interactions": 1} in by_name["sparse_items"].examples


def test_report_serialises_and_renders(frame):
    frame.loc[0, "rating"] = float("nan")
    frame.loc[1, "rating"] = 9.0
    report = validate(frame, RULES, quarantined={"duplicate": 2})
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["success"] is False
    assert payload["quarantined"] == {"duplicate": 2}
    assert payload["rules"]["rating_max"] == 5.0
    nulls = next(c for c in payload["checks"] if c["name"] == "rating_not_null")
    assert nulls["unexpected_count"] == 1 and nulls["samples"][0]["rating"] is None
    markdown = report.to_markdown()
    assert markdown.startswith("# Data validation FAILED")
    assert "| `rating_in_scale` (expect_column_values_to_be_between) | rating | **FAIL** | 1 |" in (
        markdown
    )
    assert "## rating_not_null" in markdown
    assert "Quarantined before validation: 2 rows (duplicate)" in markdown
