"""The synthetic generator: deterministic for a seed, MovieLens-like shapes and statistics."""

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recsys_core.data import synthetic
from recsys_core.exceptions import ConfigError

START = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def ml100k():
    return synthetic.generate(synthetic.config_for("100k", seed=7))


def test_same_seed_gives_identical_frames():
    a = synthetic.generate(synthetic.config_for("small", seed=3))
    b = synthetic.generate(synthetic.config_for("small", seed=3))
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    assert a.source == b.source


def test_different_seeds_give_different_data():
    a = synthetic.generate(synthetic.config_for("small", seed=3)).interactions
    b = synthetic.generate(synthetic.config_for("small", seed=4)).interactions
    assert not a.equals(b)
    assert not np.array_equal(a["rating"].to_numpy()[:500], b["rating"].to_numpy()[:500])


@pytest.mark.parametrize("size", ["tiny", "small", "100k"])
def test_preset_shapes(size):
    n_users, n_items, n_ratings = synthetic.PRESETS[size]
    data = synthetic.generate(synthetic.config_for(size, seed=0))
    frame = data.interactions
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    # every user rates something; the number of ratings is an upper bound met closely
    assert frame["user"].nunique() == n_users
    assert frame["item"].nunique() <= n_items
    assert frame["item"].nunique() >= 0.9 * n_items
    assert 0.8 * n_ratings <= len(frame) <= n_ratings
    assert len(data.items) == n_items
    assert not frame.duplicated(["user", "item"]).any()
    assert frame["timestamp"].dtype == np.int64
    assert frame["rating"].dtype == np.float64
    assert data.rating_scale == (1.0, 5.0)


def test_ratings_are_stars_with_a_movielens_mean(ml100k):
    ratings = ml100k.interactions["rating"]
    assert 3.2 < ratings.mean() < 3.9
    assert set(ratings.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # every star is used, not only the middle of the scale
    assert set(ratings.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_half_star_step_stays_on_the_half_star_scale():
    cfg = synthetic.config_for("tiny", seed=1, rating_step=0.5, rating_min=0.5)
    ratings = synthetic.generate(cfg).interactions["rating"].to_numpy()
    assert np.all((ratings * 2) == np.round(ratings * 2))
    assert ratings.min() >= 0.5 and ratings.max() <= 5.0


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_item_popularity_has_a_long_tail(seed):
    data = synthetic.generate(synthetic.config_for("100k", seed=seed))
    counts = (
        data.interactions["item"]
        .value_counts()
        .reindex(data.items["item"], fill_value=0)
        .sort_values(ascending=False)
        .to_numpy()
    )
    top = counts[: len(counts) // 10].sum()
    assert top / counts.sum() > 0.35
    # and a tail: the least popular half of the catalog holds few ratings
    assert counts[len(counts) // 2 :].sum() / counts.sum() < 0.2


def test_users_have_a_minimum_number_of_ratings(ml100k):
    per_user = ml100k.interactions.groupby("user").size()
    assert per_user.min() >= 20
    # activity is skewed too: the most active user rates far more than the median one
    assert per_user.max() > 5 * per_user.median()


def test_tiny_and_small_use_a_lower_minimum():
    per_user = synthetic.generate(synthetic.config_for("tiny", seed=2)).interactions
    assert per_user.groupby("user").size().min() >= 8


def test_timestamps_lie_in_the_three_years_from_2019(ml100k):
    ts = ml100k.interactions["timestamp"]
    assert ts.min() >= START
    assert ts.max() < END
    assert ts.is_monotonic_increasing  # sorted by time


def test_every_item_has_metadata_with_genres(ml100k):
    items = ml100k.items
    assert list(items.columns) == ["item", "title", "genres"]
    assert set(ml100k.interactions["item"]) <= set(items["item"])
    assert items["item"].is_unique
    assert (items["title"].str.len() > 0).all()
    genres = items["genres"].str.split("|")
    assert genres.map(len).between(1, 3).all()
    assert set(g for gs in genres for g in gs) <= set(synthetic.GENRES)


def test_unknown_size_lists_the_sizes():
    with pytest.raises(ConfigError) as err:
        synthetic.config_for("huge")
    message = str(err.value)
    assert "'huge'" in message
    for size in ("tiny", "small", "100k", "1m", "10m"):
        assert size in message


def _digest(collected) -> str:
    h = hashlib.sha256()
    for frame in (collected.interactions, collected.items):
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()[:16]


# the data every test fixture and the calibrated profiles are built from: a change of the
# generator must leave these shapes' output as it is, row for row, on any x86 CPU
@pytest.mark.parametrize(
    ("size", "seed", "digest"),
    [
        ("tiny", 42, "e616646acedd9545"),
        ("small", 3, "1697a7bbc221656d"),
        ("100k", 7, "d8101a3278f113fc"),
        ("ml100k", 42, "1314cab2919ff66a"),
    ],
)
def test_small_shapes_give_the_data_they_always_gave(size, seed, digest):
    assert _digest(synthetic.generate(synthetic.config_for(size, seed=seed))) == digest


def test_small_shapes_do_not_depend_on_the_cpu_s_vector_instructions():
    # numpy picks AVX-512 code (argpartition among others) where the CPU has it: the same
    # generator without it must give the pinned data too
    from numpy._core._multiarray_umath import __cpu_features__

    wide = [f for f in ("X86_V4", "AVX512_ICL", "AVX512_SPR") if __cpu_features__.get(f)]
    if not wide:
        pytest.skip("this CPU has no AVX-512: the pinned digests above are its own")
    code = (
        "import hashlib, pandas as pd; from recsys_core.data import synthetic as s; "
        "c = s.generate(s.config_for('ml100k', seed=42)); h = hashlib.sha256(); "
        "[h.update(pd.util.hash_pandas_object(f, index=True).to_numpy().tobytes()) "
        "for f in (c.interactions, c.items)]; print(h.hexdigest()[:16])"
    )
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(wide)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "1314cab2919ff66a"


def test_presets_up_to_1m_draw_every_pair_and_25m_jumps():
    for size in ("tiny", "small", "100k", "1m"):
        n_users, n_items, _ = synthetic.PRESETS[size]
        assert n_users * n_items <= synthetic.EXACT_PAIRS_MAX
    n_users, n_items, n_ratings = synthetic.PRESETS["25m"]
    assert (n_users, n_items, n_ratings) == (162_541, 59_047, 25_000_095)
    assert n_users * n_items > synthetic.EXACT_PAIRS_MAX


@pytest.mark.parametrize("count", [5, 40, 120])
def test_jumps_draw_from_the_distribution_of_the_gumbel_keys(count):
    # one user repeated 20,000 times: how often each of 200 items is drawn, by both paths
    rng = np.random.default_rng(3)
    n_users, n_items, rank = 20_000, 200, 4
    cfg = synthetic.SyntheticConfig(n_users=n_users, n_items=n_items, rank=rank, seed=1)
    log_pop = rng.normal(0.0, cfg.popularity_sigma, n_items)
    P = np.repeat(rng.normal(size=(1, rank)), n_users, axis=0)
    Q = rng.normal(size=(n_items, rank))
    counts = np.full(n_users, count)
    jumps = synthetic._draw_items_jumps(cfg, counts, log_pop, P, Q, np.random.default_rng(1))
    exact = synthetic._draw_items_gumbel(cfg, counts, log_pop, P, Q, np.random.default_rng(2))
    f_jumps = np.bincount(jumps, minlength=n_items) / n_users
    f_exact = np.bincount(exact, minlength=n_items) / n_users
    # the difference of two frequencies over 20,000 draws, in standard errors
    se = np.sqrt(np.maximum(f_exact * (1 - f_exact), 1e-4) * 2 / n_users)
    assert (np.abs(f_jumps - f_exact) / se).max() < 5.0
    # and not a flat draw: the rare and disliked items are drawn far less often than the rest
    assert f_exact.min() < 0.5 * count / n_items


def test_jumps_keep_the_counts_and_never_repeat_an_item(monkeypatch):
    cfg = synthetic.config_for("small", seed=5)
    exact = synthetic.generate(cfg).interactions
    monkeypatch.setattr(synthetic, "EXACT_PAIRS_MAX", 0)
    jumps = synthetic.generate(cfg).interactions
    again = synthetic.generate(cfg).interactions
    pd.testing.assert_frame_equal(jumps, again)
    assert not jumps.duplicated(["user", "item"]).any()
    pd.testing.assert_series_equal(
        jumps.groupby("user").size(), exact.groupby("user").size(), check_names=False
    )
    # as concentrated on the popular items (the item ids are shuffled by other draws)
    share = [f["item"].value_counts().iloc[:25].sum() / len(f) for f in (exact, jumps)]
    assert share[1] == pytest.approx(share[0], rel=0.2)
    assert not jumps.equals(exact)
