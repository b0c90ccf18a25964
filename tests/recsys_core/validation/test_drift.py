"""Drift statistics on hand-made tables (values worked out by hand) and on synthetic data."""

import math

import numpy as np
import pandas as pd
import pydantic
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import DataValidationError
from recsys_core.validation import ValidationRules
from recsys_core.validation.drift import (
    compare,
    new_share,
    plot,
    popularity_js,
    raise_for_stop,
    rating_psi,
)
from recsys_core.validation.rules import DriftRules, DriftThreshold


def _table(users, items, ratings):
    return pd.DataFrame(
        {
            "user": list(map(str, users)),
            "item": list(map(str, items)),
            "rating": np.asarray(ratings, dtype=float),
            "timestamp": np.arange(len(users), dtype=np.int64),
        }
    )


def test_the_same_data_shows_no_drift(frame):
    report = compare(frame, frame.sample(frac=1.0, random_state=0))
    for name in (
        "rating_ks",
        "rating_psi",
        "item_popularity_js",
        "new_user_share",
        "new_item_share",
        "interactions_per_user_ks",
    ):
        assert report.statistics[name] == pytest.approx(0.0, abs=1e-9), name
    assert report.level == "ok" and report.at("warn") == []
    per_user = frame.groupby("user").size()
    assert report.statistics["interactions_per_user_mean"] == pytest.approx(per_user.mean())
    assert report.statistics["reference_interactions_per_user_median"] == per_user.median()


def test_statistics_match_values_worked_out_by_hand():
    ref = _table([1, 1, 2, 2], ["a", "b", "a", "b"], [1, 1, 5, 5])
    cur = _table([1, 3, 3, 4], ["a", "c", "c", "c"], [1, 5, 5, 5])
    # ratings: ref half 1 half 5, cur a quarter 1: the CDFs differ by 0.25 at 1
    report = compare(ref, cur)
    assert report.statistics["rating_ks"] == pytest.approx(0.25)
    psi = 0.25 * math.log(0.5 / 0.25) + (-0.25) * math.log(0.5 / 0.75)
    assert report.statistics["rating_psi"] == pytest.approx(psi, rel=1e-3)
    assert report.statistics["new_user_share"] == pytest.approx(2 / 3)  # 3 and 4 of 1, 3, 4
    assert report.statistics["new_item_share"] == pytest.approx(1 / 2)  # c of a, c
    # popularity: ref (a .5, b .5, c 0), cur (a .25, b 0, c .75); JS distance, base 2
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.0, 0.75])
    m = (p + q) / 2
    kl = lambda x, y: sum(a * math.log2(a / b) for a, b in zip(x, y, strict=True) if a > 0)  # noqa: E731
    assert report.statistics["item_popularity_js"] == pytest.approx(
        math.sqrt((kl(p, m) + kl(q, m)) / 2)
    )
    # per user: ref (2, 2), cur (1, 2, 1)
    assert report.statistics["interactions_per_user_ks"] == pytest.approx(2 / 3)
    assert report.statistics["interactions_per_user_mean"] == pytest.approx(4 / 3)
    assert report.counts == {
        "rows": 4,
        "users": 3,
        "items": 2,
        "reference_rows": 4,
        "reference_users": 2,
        "reference_items": 2,
    }


def test_disjoint_items_and_ratings_give_the_largest_values():
    assert popularity_js(pd.Series(["a", "b"]), pd.Series(["c", "d"])) == pytest.approx(1.0)
    assert new_share(pd.Series(["a"]), pd.Series(["b", "c"])) == 1.0
    # a rating value present on one side only is a large but finite shift
    psi = rating_psi(pd.Series([1.0] * 10), pd.Series([5.0] * 10))
    assert math.isfinite(psi) and psi > 10


def test_thresholds_warn_and_stop_with_a_message_naming_the_setting():
    ref = _table(range(20), ["a"] * 10 + ["b"] * 10, [3] * 20)
    cur = _table(range(20), ["a"] * 18 + ["b"] * 2, [3] * 20)
    rules = DriftRules(
        item_popularity_js=DriftThreshold(warn=0.3, stop=0.5), rating_ks=DriftThreshold(warn=0.5)
    )
    js = popularity_js(ref["item"], cur["item"])
    assert 0.35 < js < 0.5
    report = compare(ref, cur, rules)
    assert report.levels["item_popularity_js"] == "warn" and report.level == "warn"
    assert report.levels["rating_ks"] == "ok"
    raise_for_stop(report)  # a warning does not stop

    stopping = rules.model_copy(update={"item_popularity_js": DriftThreshold(warn=0.3, stop=0.35)})
    report = compare(ref, cur, stopping, reference_name="champion version 3")
    assert report.level == "stop" and report.at("stop") == ["item_popularity_js"]
    with pytest.raises(DataValidationError) as info:
        raise_for_stop(report)
    message = str(info.value)
    assert f"item_popularity_js = {js:.4g}" in message
    assert "validation.drift.item_popularity_js.stop = 0.35" in message
    assert "champion version 3" in message
    assert info.value.report["level"] == "stop"
    md = report.to_markdown()
    assert md.startswith("# Data drift: STOPPED")
    assert "| item_popularity_js | " in md and "| STOP |" in md


def test_default_rules_never_stop_even_on_very_different_data():
    rules = DriftRules()
    assert all(t.stop is None for t in rules.thresholds().values())
    assert all(t.warn is not None for t in rules.thresholds().values())
    ref = _table(range(10), ["a"] * 10, [1] * 10)
    cur = _table(range(10, 20), ["b"] * 10, [5] * 10)
    report = compare(ref, cur, rules)
    assert report.level == "warn" and set(report.at("warn")) >= {
        "rating_ks",
        "item_popularity_js",
        "new_user_share",
        "new_item_share",
    }


def test_day_to_day_growth_of_the_same_data_stays_below_the_warnings():
    data = generate(config_for("small")).interactions.sort_values("timestamp")
    older = data.iloc[: int(len(data) * 0.9)]
    report = compare(older, data)
    assert report.level == "ok", report.to_markdown()


def test_drift_rules_are_validated_and_live_in_the_validation_rules():
    with pytest.raises(pydantic.ValidationError, match="must not exceed stop"):
        DriftThreshold(warn=0.5, stop=0.2)
    with pytest.raises(pydantic.ValidationError):
        DriftThreshold(warn=-1.0)
    with pytest.raises(pydantic.ValidationError, match="extra"):
        DriftRules(item_popularity=DriftThreshold())
    rules = ValidationRules(drift={"rating_ks": {"warn": 0.05, "stop": 0.4}})
    assert rules.drift.rating_ks.stop == 0.4
    assert rules.drift.item_popularity_js.warn == 0.2  # the other defaults stay
    assert all(f.description for f in DriftRules.model_fields.values())


def test_an_empty_table_is_refused_with_a_message():
    empty = _table([], [], [])
    with pytest.raises(DataValidationError, match="current snapshot has no interactions"):
        compare(_table([1], ["a"], [3]), empty, current_name="current")


def test_the_plot_is_written(frame, tmp_path):
    out = plot(frame, frame.iloc[: len(frame) // 2], tmp_path / "sub" / "drift.png")
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"
