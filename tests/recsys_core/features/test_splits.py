"""Train/test splits: no leak in time, seeded randomness, leave-last-k-out, cold counts."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from recsys_core.data import synthetic
from recsys_core.exceptions import DataError
from recsys_core.features import SplitConfig, split


@pytest.fixture(scope="module")
def frame():
    return synthetic.generate(synthetic.config_for("small", seed=11)).interactions


def _frame(users, items, timestamps):
    return pd.DataFrame(
        {"user": users, "item": items, "rating": [3.0] * len(users), "timestamp": timestamps}
    )


# ---------------------------------------------------------------- time


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_time_split_has_no_leak_and_the_requested_size(frame, fraction):
    s = split(frame, SplitConfig(strategy="time", test_fraction=fraction))
    assert s.train["timestamp"].max() < s.test["timestamp"].min()
    assert s.info["cutoff"] == s.test["timestamp"].min()
    assert len(s.train) + len(s.test) == len(frame)
    assert len(s.test) / len(frame) == pytest.approx(fraction, abs=0.01)
    assert s.info["n_train"] == len(s.train) and s.info["n_test"] == len(s.test)
    assert list(s.train.index) == list(range(len(s.train)))


def test_time_split_is_the_default(frame):
    s = split(frame)
    assert s.info["strategy"] == "time"
    assert s.train["timestamp"].max() < s.test["timestamp"].min()


def test_time_split_keeps_ties_on_one_side():
    # ten rows, timestamps 0..4 twice: the cutoff never separates equal timestamps
    f = _frame(list("abcdeabcde"), list("vwxyzzyxwv"), [0, 1, 2, 3, 4] * 2)
    s = split(f, SplitConfig(test_fraction=0.2))
    assert s.test["timestamp"].tolist() == [4, 4]
    assert 4 not in s.train["timestamp"].tolist()


def test_time_split_refuses_constant_timestamps():
    f = _frame(["a", "b", "c", "d"], ["x", "y", "x", "y"], [7, 7, 7, 7])
    with pytest.raises(DataError, match="same timestamp.*'random'"):
        split(f, SplitConfig(strategy="time"))


def test_cold_users_and_items_are_counted():
    f = _frame(
        ["a", "b", "a", "b", "a", "c", "c", "b"],
        ["x", "y", "y", "x", "z", "x", "w", "w"],
        [1, 2, 3, 4, 5, 6, 7, 8],
    )
    s = split(f, SplitConfig(strategy="time", test_fraction=0.375))
    # train: rows 1-5 (users a, b; items x, y, z); test: (c, x), (c, w), (b, w)
    assert s.test["timestamp"].tolist() == [6, 7, 8]
    assert s.info["test_users"] == 2
    assert s.info["cold_users"] == 1  # c
    assert s.info["cold_user_rows"] == 2
    assert s.info["cold_items"] == 1  # w
    assert s.info["cold_item_rows"] == 2


def test_cold_counts_on_synthetic_data(frame):
    s = split(frame, SplitConfig(strategy="time"))
    train_users, train_items = set(s.train["user"]), set(s.train["item"])
    assert s.info["cold_users"] == len(set(s.test["user"]) - train_users)
    assert s.info["cold_items"] == len(set(s.test["item"]) - train_items)
    assert s.info["cold_user_rows"] == int((~s.test["user"].isin(train_users)).sum())
    # users start at random times: a global cutoff leaves some users only in test
    assert s.info["cold_users"] > 0


# ---------------------------------------------------------------- random


def test_random_split_is_seeded_and_deterministic(frame):
    cfg = SplitConfig(strategy="random", test_fraction=0.25, seed=5)
    a, b = split(frame, cfg), split(frame, cfg)
    pd.testing.assert_frame_equal(a.test, b.test)
    pd.testing.assert_frame_equal(a.train, b.train)
    assert len(a.test) / len(frame) == pytest.approx(0.25, abs=0.02)
    other = split(frame, SplitConfig(strategy="random", test_fraction=0.25, seed=6))
    assert not other.test.equals(a.test)
    merged = pd.concat([a.train, a.test]).sort_values(list(frame.columns)).reset_index(drop=True)
    expected = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, expected)


# ---------------------------------------------------------------- last_k


def test_last_k_puts_each_users_latest_rows_in_test():
    f = _frame(
        ["a", "a", "a", "b", "b", "c", "a"],
        ["x", "y", "z", "x", "y", "x", "w"],
        [10, 30, 20, 5, 1, 7, 40],
    )
    s = split(f, SplitConfig(strategy="last_k", last_k=2))
    test = sorted(zip(s.test["user"], s.test["item"], strict=True))
    # a: latest are w (40) and y (30); b has exactly 2 rows and c one: they stay in train
    assert test == [("a", "w"), ("a", "y")]
    assert sorted(zip(s.train["user"], s.train["item"], strict=True)) == [
        ("a", "x"),
        ("a", "z"),
        ("b", "x"),
        ("b", "y"),
        ("c", "x"),
    ]


def test_last_k_on_synthetic_data(frame):
    s = split(frame, SplitConfig(strategy="last_k", last_k=3))
    sizes = frame.groupby("user").size()
    assert (s.test.groupby("user").size() == 3).all()
    assert set(s.test["user"]) == set(sizes[sizes > 3].index)
    last_train = s.train.groupby("user")["timestamp"].max()
    first_test = s.test.groupby("user")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()
    assert s.info["cold_users"] == 0


def test_last_k_with_a_repeated_index():
    # a concatenation repeats index labels; rows are still told apart by position
    f = _frame(["a", "a", "a"], ["x", "y", "z"], [1, 2, 3])
    g = pd.concat([f, f.assign(user="b")])
    assert g.index.has_duplicates
    s = split(g, SplitConfig(strategy="last_k", last_k=1))
    assert sorted(zip(s.test["user"], s.test["item"], strict=True)) == [("a", "z"), ("b", "z")]
    assert len(s.train) == 4


def test_last_k_with_too_few_rows_per_user():
    f = _frame(["a", "b", "c"], ["x", "x", "y"], [1, 2, 3])
    with pytest.raises(DataError, match="'last_k' split left 3 training and 0 test rows"):
        split(f, SplitConfig(strategy="last_k", last_k=1))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("n", [0, 1])
def test_too_little_data(n):
    f = _frame(["a"] * n, ["x"] * n, list(range(n)))
    with pytest.raises(DataError, match=f"cannot split {n} interaction"):
        split(f)


def test_random_split_that_leaves_no_test_rows():
    f = _frame(["a", "b"], ["x", "y"], [1, 2])
    with pytest.raises(DataError, match="'random' split left"):
        split(f, SplitConfig(strategy="random", test_fraction=0.01, seed=0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "future"},
        {"test_fraction": 0.0},
        {"test_fraction": 1.0},
        {"last_k": 0},
        {"shuffle": True},
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(ValidationError):
        SplitConfig(**kwargs)


def test_split_leaves_the_input_untouched(frame):
    before = frame.copy()
    for strategy in ("time", "random", "last_k"):
        split(frame, SplitConfig(strategy=strategy))
    pd.testing.assert_frame_equal(frame, before)
    assert np.array_equal(frame.index, before.index)
