"""The duplicates policy: latest, mean and refuse on repeated (user, item) pairs."""

import numpy as np
import pandas as pd
import pytest

from recsys_core.data.duplicates import POLICIES, resolve_duplicates
from recsys_core.exceptions import ConfigError, DataError


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return frame.astype({"user": object, "item": object, "rating": "float64", "timestamp": "int64"})


REPEATED = _frame(
    [
        ("u1", "a", 1.0, 10),
        ("u1", "b", 3.0, 10),
        ("u1", "a", 5.0, 30),  # later: latest keeps it
        ("u2", "a", 2.0, 5),
        ("u1", "a", 4.0, 20),  # repeated again, not the latest
        ("u2", "a", 4.0, 5),  # same timestamp as row 4: the later line wins
    ]
)


def test_latest_keeps_the_latest_rating_of_each_pair_in_first_seen_order():
    out, dropped = resolve_duplicates(REPEATED, "latest")
    assert dropped == 3
    assert out.to_dict("records") == [
        {"user": "u1", "item": "a", "rating": 5.0, "timestamp": 30},
        {"user": "u1", "item": "b", "rating": 3.0, "timestamp": 10},
        {"user": "u2", "item": "a", "rating": 4.0, "timestamp": 5},
    ]
    assert list(out.index) == [0, 1, 2]
    assert out.dtypes.to_dict() == REPEATED.dtypes.to_dict()


def test_mean_averages_ratings_and_keeps_the_latest_timestamp():
    out, dropped = resolve_duplicates(REPEATED, "mean")
    assert dropped == 3
    assert out.to_dict("records") == [
        {"user": "u1", "item": "a", "rating": pytest.approx(10 / 3), "timestamp": 30},
        {"user": "u1", "item": "b", "rating": 3.0, "timestamp": 10},
        {"user": "u2", "item": "a", "rating": 3.0, "timestamp": 5},
    ]
    assert out.dtypes.to_dict() == REPEATED.dtypes.to_dict()


def test_mean_never_averages_a_null_rating_away():
    frame = _frame([("u", "a", np.nan, 1), ("u", "a", 4.0, 2), ("u", "b", 2.0, 1)])
    out, _ = resolve_duplicates(frame, "mean")
    assert np.isnan(out.loc[0, "rating"]) and out.loc[1, "rating"] == 2.0


def test_refuse_names_the_first_repeated_pair_and_its_rows():
    with pytest.raises(DataError) as info:
        resolve_duplicates(REPEATED, "refuse", origin="'ratings.csv'")
    msg = str(info.value)
    assert "'ratings.csv' rates the same (user, item) pair more than once" in msg
    assert "user 'u1' and item 'a' on data rows 1, 3, 5" in msg
    assert "1 other repeated pair(s)" in msg
    assert "'latest'" in msg and "'mean'" in msg and "--duplicates" in msg


@pytest.mark.parametrize("policy", POLICIES)
def test_a_table_without_repeats_is_returned_as_is(policy):
    frame = REPEATED.drop_duplicates(["user", "item"])
    out, dropped = resolve_duplicates(frame, policy)
    assert dropped == 0 and out is frame


def test_unknown_policy_is_a_config_error():
    with pytest.raises(
        ConfigError, match="unknown duplicates policy 'first'; use one of latest, mean, refuse"
    ):
        resolve_duplicates(REPEATED, "first")


@pytest.mark.parametrize("policy", ["latest", "mean"])
def test_categorical_ids_are_resolved_as_the_text_ids(policy):
    coded = REPEATED.astype({"user": "category", "item": "category"})
    out, dropped = resolve_duplicates(coded, policy)
    plain, plain_dropped = resolve_duplicates(REPEATED, policy)
    assert dropped == plain_dropped
    assert out["user"].dtype == coded["user"].dtype  # the codes' vocabulary kept
    pd.testing.assert_frame_equal(out.astype({"user": object, "item": object}), plain)


def test_categorical_ids_without_repeats_and_refused_repeats():
    categorical = {"user": "category", "item": "category"}
    once = REPEATED.drop_duplicates(["user", "item"]).astype(categorical)
    out, dropped = resolve_duplicates(once, "refuse")
    assert dropped == 0 and out is once
    with pytest.raises(DataError, match="'u1' and item 'a'"):
        resolve_duplicates(REPEATED.astype(categorical), "refuse")
