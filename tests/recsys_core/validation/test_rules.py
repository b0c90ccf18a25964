"""The rules and the report's plain-data behaviour, without running the suite."""

import json

import pydantic
import pytest

from recsys_core.validation import CheckResult, ValidationReport, ValidationRules


def test_rules_are_frozen_strict_and_ordered():
    rules = ValidationRules()
    assert (rules.rating_min, rules.rating_max, rules.min_rows) == (1.0, 5.0, 100)
    with pytest.raises(pydantic.ValidationError):
        rules.rating_min = 0.0
    with pytest.raises(pydantic.ValidationError, match="extra"):
        ValidationRules(rating_mn=0.5)
    with pytest.raises(pydantic.ValidationError, match="must not exceed rating_max"):
        ValidationRules(rating_min=5.0, rating_max=1.0)
    assert all(f.description for f in ValidationRules.model_fields.values())


def test_an_unset_timestamp_limit_resolves_to_now():
    resolved = ValidationRules().resolved()
    assert resolved.max_timestamp is not None
    assert resolved.resolved() is resolved
    assert ValidationRules(max_timestamp=10).resolved().max_timestamp == 10


def test_summary_and_dict_of_a_hand_made_report():
    check = CheckResult(
        name="rating_in_scale",
        expectation="expect_column_values_to_be_between",
        columns=("rating",),
        success=False,
        problem="ratings outside [1.0, 5.0]",
        fix="set rating_min/rating_max",
        unexpected_count=1,
        unexpected_percent=50.0,
        samples=[{"row": 1, "user": "u", "rating": float("inf")}],
    )
    report = ValidationReport(success=False, checks=[check], n_rows=2)
    assert report.summary() == (
        "1 of 1 checks failed on 2 rows: ratings outside [1.0, 5.0]: 1 row (50%), "
        "e.g. row 1 (user 'u', rating inf); set rating_min/rating_max"
    )
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["checks"][0]["samples"] == [{"row": 1, "user": "u", "rating": None}]
    assert payload["checks"][0]["columns"] == ["rating"]
    with pytest.raises(KeyError, match="checks: rating_in_scale"):
        report.check("nope")
