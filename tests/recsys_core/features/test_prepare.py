"""prepare.build: the split of one run written as Parquet, and read back."""

import json

import pandas as pd
import pytest

from recsys_core.data import synthetic
from recsys_core.features import SplitConfig
from recsys_core.features.prepare import Features, build


@pytest.fixture(scope="module")
def data():
    return synthetic.generate(synthetic.config_for("tiny", seed=4))


def test_build_writes_the_split(data, tmp_path):
    features = build(data.interactions, data.items, SplitConfig(), tmp_path / "run")
    assert features.train_path.exists() and features.test_path.exists()
    assert features.items_path.exists()
    train, test = features.frames()
    assert len(train) + len(test) == len(data.interactions)
    assert train["timestamp"].max() < test["timestamp"].min()
    info = json.loads((tmp_path / "run" / "split.json").read_text())
    assert info == features.info
    assert info["n_train"] == len(train) and info["n_test"] == len(test)
    assert info["n_users_train"] == train["user"].nunique()
    assert info["n_items_train"] == train["item"].nunique()
    pd.testing.assert_frame_equal(features.item_meta(), data.items, check_dtype=False)


def test_train_set_maps_test_into_the_training_vocabularies(data, tmp_path):
    features = build(data.interactions, data.items, SplitConfig(), tmp_path)
    train, test = features.train_set()
    train_frame, test_frame = features.frames()
    assert train.n_users == train_frame["user"].nunique()
    assert test.users is train.users and test.items is train.items
    assert int((test.user_idx < 0).sum()) == features.info["cold_user_rows"]
    assert int((test.item_idx < 0).sum()) == features.info["cold_item_rows"]
    assert train.item_meta is not None
    assert train.matrix.nnz == len(train_frame)


def test_without_item_metadata(data, tmp_path):
    features = build(data.interactions, None, SplitConfig(strategy="random"), tmp_path)
    assert not features.items_path.exists()
    assert features.item_meta() is None
    assert features.train_set()[0].item_meta is None


def test_features_is_a_cheap_reference(data, tmp_path):
    features = build(data.interactions, None, SplitConfig(), tmp_path)
    again = Features(**features.to_dict())
    assert again == features
    pd.testing.assert_frame_equal(again.frames()[1], features.frames()[1])
