"""sgd-mf details that the quality tests leave open (found by `make mutation`): the state after
fit, the loss it reports, scoring against prediction, the stratified order, the lr schedule.

All on the tiny fixture and a few epochs, so that they run in seconds.
"""

import math
import re

import numpy as np
import pytest

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import create
from recsys_core.models.sgd_mf import _BLOCKS, _stratify, scheduled_lr


def _fit(tiny, **params):
    return create("sgd-mf", {"epochs": 3, "factors": 4, **params}).fit(tiny.data)


def test_fitted_state(tiny):
    model = _fit(tiny, factors=3)
    data = tiny.data
    assert model.user_factors_.shape == (data.n_users, 3)
    assert model.item_factors_.shape == (data.n_items, 3)
    assert model.user_bias_.shape == (data.n_users,)
    assert model.item_bias_.shape == (data.n_items,)
    assert float(model.mu_) == pytest.approx(float(data.rating.mean()))
    assert np.abs(model.user_bias_).max() > 0 and np.abs(model.item_bias_).max() > 0
    assert np.abs(model.user_factors_).max() > 0
    unbiased = _fit(tiny, biased=False)
    assert float(unbiased.mu_) == 0.0
    assert not unbiased.user_bias_.any() and not unbiased.item_bias_.any()


def test_the_loss_of_a_first_tiny_step_is_the_rating_variance(tiny):
    # zero factors, zero biases and an lr too small to move them: each error is r - mu
    r = tiny.data.rating.astype(np.float64)
    model = _fit(tiny, epochs=1, lr=1e-9, init_std=0.0)
    assert model.history_[0]["epoch"] == 1
    assert model.history_[0]["train_loss"] == pytest.approx(np.var(r), rel=1e-6)
    assert not model.user_factors_.any() and not model.item_factors_.any()
    # without biases mu is 0: the error is r itself
    unbiased = _fit(tiny, epochs=1, lr=1e-9, init_std=0.0, biased=False)
    assert unbiased.history_[0]["train_loss"] == pytest.approx(np.mean(r**2), rel=1e-6)


def test_initial_factors_follow_init_std(tiny):
    # one step of lr 1e-9 leaves the initialization as drawn: normal(0, init_std)
    model = _fit(tiny, epochs=1, lr=1e-9, init_std=0.5, factors=50)
    assert model.user_factors_.std() == pytest.approx(0.5, rel=0.1)
    assert model.item_factors_.std() == pytest.approx(0.5, rel=0.1)
    assert abs(model.user_factors_.mean()) < 0.05


def test_validation_curve_is_the_rmse_of_the_clipped_predictions(tiny):
    eval_data = Interactions.from_frame(tiny.test, tiny.data.users, tiny.data.items)
    seen = []
    # wide initial factors, barely trained: many raw predictions fall outside the rating scale
    params = {"epochs": 3, "factors": 4, "init_std": 2.0, "lr": 1e-9}
    model = create("sgd-mf", params).fit(
        tiny.data, eval_data=eval_data, callback=lambda epoch, m: seen.append((epoch, m))
    )
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]
    assert [e for e, _ in seen] == [1, 2, 3]
    m = eval_data.known
    pred = model.predict_idx(eval_data.user_idx[m], eval_data.item_idx[m])
    expected = math.sqrt(np.mean((pred - eval_data.rating[m].astype(np.float64)) ** 2))
    assert model.history_[-1]["val_rmse"] == pytest.approx(expected, rel=1e-9)
    raw = model._predict_idx(eval_data.user_idx[m], eval_data.item_idx[m])
    assert not np.allclose(raw, pred)  # the clipping mattered
    assert all(h["train_loss"] > 0 for h in model.history_)
    # evaluation data without a known pair: no curve
    cold = Interactions.from_frame(
        tiny.test.assign(user="nobody"), tiny.data.users, tiny.data.items
    )
    plain = create("sgd-mf", {"epochs": 2, "factors": 4}).fit(tiny.data, eval_data=cold)
    assert all("val_rmse" not in h for h in plain.history_)


def test_scores_are_the_predictions_of_every_item(tiny):
    model = _fit(tiny)
    n_items = tiny.data.n_items
    users = np.array([0, 3, 5])
    scores = model._score_users(users)
    # ranking scores are float32 (the order is what they serve): equal to a float32 rounding
    assert scores.dtype == np.float32
    for row, u in enumerate(users):
        pred = model._predict_idx(np.full(n_items, u), np.arange(n_items))
        np.testing.assert_allclose(scores[row], pred, rtol=2e-6)
    expected = (
        model.mu_
        + model.user_bias_[3]
        + model.item_bias_
        + model.item_factors_ @ model.user_factors_[3]
    )
    np.testing.assert_allclose(scores[1], expected, rtol=2e-6)


def test_cold_pairs_fall_back_to_the_known_biases(tiny):
    model = _fit(tiny)
    mu, bu, bi = float(model.mu_), model.user_bias_, model.item_bias_
    pred = model._predict_idx(np.array([-1, 2, -1]), np.array([4, -1, -1]))
    np.testing.assert_allclose(pred, [mu + bi[4], mu + bu[2], mu], rtol=1e-12)


def test_stratified_order_keeps_every_rating_and_separates_the_blocks(tiny):
    data = tiny.data
    u, i, r, offsets = _stratify(data, np.random.default_rng(0))
    m = data.known
    before = sorted(
        zip(data.user_idx[m], data.item_idx[m], data.rating[m].astype(float), strict=True)
    )
    assert sorted(zip(u, i, r, strict=True)) == before
    # no per-rating array wider than the input's: int32 ids, the ratings' own float32
    assert u.dtype == np.int32 and i.dtype == np.int32 and r.dtype == np.float32
    # the order is a stable sort by (sub-epoch, block) of the seeded shuffle, as defined with
    # numpy's own permutation and stable argsort (the counting sort must agree exactly)
    rng = np.random.default_rng(0)
    perm = rng.permutation(int(m.sum()))
    ug = rng.permutation(data.n_users) % _BLOCKS
    ig = rng.permutation(data.n_items) % _BLOCKS
    ru, ri, rr = (a[m][perm] for a in (data.user_idx, data.item_idx, data.rating))
    key = ((ig[ri] - ug[ru]) % _BLOCKS) * _BLOCKS + ug[ru]
    order = np.argsort(key, kind="stable")
    for got, want in ((u, ru[order]), (i, ri[order]), (r, rr[order])):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(offsets[1:], np.cumsum(np.bincount(key, minlength=_BLOCKS**2)))
    assert offsets.shape == (_BLOCKS * _BLOCKS + 1,)
    assert offsets[0] == 0 and offsets[-1] == u.size
    assert (np.diff(offsets) >= 0).all()
    # within a sub-epoch the B blocks share no user and no item (they may run in parallel)
    for s in range(_BLOCKS):
        users, items = set(), set()
        for g in range(_BLOCKS):
            blk = s * _BLOCKS + g
            bu_, bi_ = (
                set(u[offsets[blk] : offsets[blk + 1]]),
                set(i[offsets[blk] : offsets[blk + 1]]),
            )
            assert not (users & bu_) and not (items & bi_), (s, g)
            users |= bu_
            items |= bi_
    # seeded: the same generator state gives the same order, another gives another
    again = _stratify(data, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip((u, i, r, offsets), again, strict=True))
    other = _stratify(data, np.random.default_rng(1))
    assert not np.array_equal(other[0], u)


def test_schedules_exact():
    assert scheduled_lr(0.01, "inverse", 0.5, 0) == 0.01
    assert scheduled_lr(0.01, "inverse", 0.5, 3) == pytest.approx(0.01 / 2.5)
    assert scheduled_lr(0.01, "exponential", 0.5, 0) == 0.01
    assert scheduled_lr(0.01, "exponential", 0.5, 3) == pytest.approx(0.01 * math.exp(-1.5))
    assert scheduled_lr(0.01, "constant", 9.0, 7) == 0.01


def test_the_first_epoch_runs_at_the_base_learning_rate(tiny):
    # a decaying schedule starts from lr itself (epoch 0), then decays
    base = _fit(tiny, epochs=1)
    for schedule in ("inverse", "exponential"):
        decayed = _fit(tiny, epochs=1, lr_schedule=schedule, lr_decay=1.0)
        np.testing.assert_array_equal(decayed.user_factors_, base.user_factors_)
        two = _fit(tiny, epochs=2, lr_schedule=schedule, lr_decay=1.0)
        assert not np.array_equal(two.user_factors_, _fit(tiny, epochs=2).user_factors_)


def test_mini_batches_differ_from_plain_sgd_and_learn_biases(tiny):
    plain = _fit(tiny)
    for batch_size in (2, 16):
        batched = _fit(tiny, batch_size=batch_size)
        assert not np.allclose(batched.user_factors_, plain.user_factors_), batch_size
        assert np.abs(batched.user_bias_).max() > 0 and np.abs(batched.item_bias_).max() > 0
    assert not _fit(tiny, batch_size=16, biased=False).user_bias_.any()


def test_a_handful_of_ratings(tiny):
    # most of the 64 blocks are empty; the loss is still a mean over the ratings
    one = tiny.train.iloc[:1]
    r = float(one["rating"].iloc[0])
    data = Interactions.from_frame(one)
    u, i, _, offsets = _stratify(data, np.random.default_rng(0))
    assert offsets.shape == (_BLOCKS * _BLOCKS + 1,) and offsets[-1] == 1
    params = {"epochs": 1, "factors": 2, "lr": 1e-9, "init_std": 0.0, "biased": False}
    model = create("sgd-mf", params).fit(data)
    assert model.history_[0]["train_loss"] == pytest.approx(r * r, rel=1e-6)
    three = Interactions.from_frame(tiny.train.iloc[:3])
    assert _stratify(three, np.random.default_rng(0))[3].shape == (_BLOCKS * _BLOCKS + 1,)


def test_divergence_message(tiny):
    expected = (
        r"^sgd-mf diverged at epoch \d+ \(non-finite loss or factors\); the learning rate "
        + re.escape("lr=1.0 is likely too high for this data: try 0.005")
        + "$"
    )
    with pytest.raises(TrainingError, match=expected):
        create("sgd-mf", {"lr": 1.0, "epochs": 50}).fit(tiny.data)
