"""Forgetting users in a fitted model, for every family of the registry: the user's rows leave
every user-indexed array (saved and reloaded), the model answers them as a new user, and the
item-level state does not change."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.models import available, create
from recsys_core.models.base import Recommender, merged_user_axes
from recsys_core.tracking.forget_versions import rewrite_state

# families whose answers for the other users depend on the forgotten user at serving time:
# user-knn scores a user from their neighbours, and a neighbour that is forgotten is gone
_NEIGHBOUR_BASED = {"user-knn"}


def _arrays(model: Recommender, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in model._state().items():
        if isinstance(value, np.ndarray) or sp.issparse(value):
            out[prefix + key] = value
    for n, member in enumerate(getattr(model, "members_", None) or []):
        out.update(_arrays(member, f"{prefix}member_{n}/"))
    return out


def _user_axes(model: Recommender, prefix: str = "") -> dict[str, int]:
    out = {prefix + k: v for k, v in merged_user_axes(type(model)).items()}
    for n, member in enumerate(getattr(model, "members_", None) or []):
        out.update(_user_axes(member, f"{prefix}member_{n}/"))
    return out


def _dense(value) -> np.ndarray:
    return value.toarray() if sp.issparse(value) else np.asarray(value)


@pytest.fixture(scope="module", params=available())
def fitted(request, tiny, fast, tmp_path_factory):
    name = request.param
    model = create(name, fast.get(name, {})).fit(tiny.data)
    folder = model.save(tmp_path_factory.mktemp(name.replace("-", "_")) / "model")
    return name, model, folder


def test_every_per_user_array_is_declared(fitted, tiny):
    """A family that adds a per-user array must list it in ``user_axes``, or it is not forgotten
    (the fixture's user count differs from its item count and from every other dimension)."""
    _, model, _ = fitted
    n_users = tiny.data.n_users
    declared = _user_axes(model)
    for key, value in _arrays(model).items():
        axes = [a for a, size in enumerate(value.shape) if size == n_users]
        assert axes == ([declared[key]] if key in declared else []), (key, value.shape)


def test_forgetting_drops_the_rows_and_answers_them_as_new(fitted, tiny, tmp_path):
    name, model, folder = fitted
    import shutil

    work = shutil.copytree(folder, tmp_path / "model")
    gone = [str(u) for u in model.user_vocab_.ids[[3, 17]]]
    others = [str(u) for u in model.user_vocab_.ids[[0, 5, 40]]]
    assert rewrite_state(work, gone + ["never-seen"]) == 2
    after = Recommender.load(work)
    assert len(after.user_vocab_) == len(model.user_vocab_) - 2
    assert not set(gone) & set(after.user_vocab_.to_list())
    keep = ~np.isin(model.user_vocab_.ids.astype(str), gone)
    before_arrays, after_arrays = _arrays(model), _arrays(after)
    axes = _user_axes(model)
    for key, value in before_arrays.items():
        if key in axes:
            assert after_arrays[key].shape[axes[key]] == keep.sum(), key
            if name not in _NEIGHBOUR_BASED:  # rows of the other users are the same
                np.testing.assert_allclose(
                    _dense(after_arrays[key]), np.compress(keep, _dense(value), axis=axes[key])
                )
        else:  # item-level and global state untouched
            np.testing.assert_array_equal(_dense(after_arrays[key]), _dense(value), err_msg=key)
    cold = after.recommend(["never-seen"], k=5)
    for user in gone:
        top = after.recommend([user], k=5)
        assert top["item"].tolist() == cold["item"].tolist()
    if name not in _NEIGHBOUR_BASED:
        a = model.recommend(others, k=5)
        b = after.recommend(others, k=5)
        assert a["item"].tolist() == b["item"].tolist()
        np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6)
    # forgetting again changes nothing
    assert rewrite_state(work, gone) == 0


def test_user_knn_renumbers_its_neighbours(tiny, fast):
    model = create("user-knn", fast.get("user-knn", {})).fit(tiny.data)
    gone = str(model.user_vocab_.ids[0])
    model.forget_users([gone])
    nbr = model.neighbours_
    assert nbr.shape[0] == tiny.data.n_users - 1
    assert nbr.max() < tiny.data.n_users - 1
    # empty slots only at the end of each row (the kernels stop at the first one)
    empty = nbr < 0
    assert (np.sort(empty, axis=1) == empty).all()
    assert np.isfinite(model.recommend([str(model.user_vocab_.ids[0])], k=3)["score"]).all()
