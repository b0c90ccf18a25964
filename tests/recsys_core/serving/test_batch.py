"""Batch scoring: every user's top-k as Parquet partitioned by version, locally and on S3."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys_core.data import files
from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import ConfigError, DataError
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.serving import batch
from recsys_core.serving.batch import chunk_size, recommend_all


@pytest.fixture(scope="module")
def data():
    return Interactions.from_frame(generate(config_for("small", seed=9)).interactions)


@pytest.fixture(scope="module", params=["sgd-mf", "ease", "bpmf"])
def model(request, data):
    params = {
        "sgd-mf": {"epochs": 4, "factors": 8},
        "ease": {"reg": 50.0},
        "bpmf": {"burn_in": 2, "samples": 2},
    }[request.param]
    return create(request.param, params).fit(data)


def test_every_user_in_chunks_matches_the_offline_top_k(model, data, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "ROWS_PER_FILE", 1000)
    seen = []
    budget = 16 * data.n_items * 7  # 7 users per chunk: many chunks and several files
    assert chunk_size(data.n_items, budget) == 7
    result = recommend_all(
        model,
        tmp_path / "out",
        model_version="3",
        k=5,
        memory_budget=budget,
        progress=lambda d, n: seen.append((d, n)),
        threads=1,
    )
    part = tmp_path / "out" / "model_version=3"
    assert result.location == str(part) and (part / "_SUCCESS").exists()
    assert result.rows == data.n_users * 5 and result.users == data.n_users
    assert len(result.files) == len(list(part.glob("part-*.parquet"))) >= 2
    assert seen[-1] == (data.n_users, data.n_users) and len(seen) == -(-data.n_users // 7)
    frame = pq.read_table(part).to_pandas()
    assert len(frame) == result.rows and list(result.sample.columns) == [
        "user",
        "rank",
        "item",
        "score",
    ]
    users = list(data.users.ids[:25])
    expected = model.recommend(users, 5)
    got = frame[frame.user.isin(users)].sort_values(["user", "rank"]).reset_index(drop=True)
    expected = expected.sort_values(["user", "rank"]).reset_index(drop=True)
    assert (got["item"].to_numpy() == expected["item"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-4, atol=1e-5)
    # chunks scored by several threads come out the same, in the same order
    threaded = recommend_all(
        model, tmp_path / "threads", model_version="3", k=5, memory_budget=budget * 3, threads=3
    )
    assert pq.read_table(threaded.location).to_pandas().equals(frame)


def test_given_users_with_an_unknown_one(data, tmp_path):
    model = create("sgd-mf", {"epochs": 2, "factors": 4}).fit(data)
    users = [data.users.ids[0], "never-seen", data.users.ids[1]]
    result = recommend_all(model, tmp_path, model_version="7", users=users, k=3)
    assert result.users == 3 and result.cold_users == 1 and result.rows == 9
    frame = pd.read_parquet(result.files[0])
    cold = frame[frame.user == "never-seen"]
    top = data.items.ids[np.argsort(-model.item_popularity_, kind="stable")[:3]]
    assert list(cold["item"]) == list(top)


def test_a_rerun_replaces_the_partition(data, tmp_path, monkeypatch):
    model = create("sgd-mf", {"epochs": 2, "factors": 4}).fit(data)
    monkeypatch.setattr(batch, "ROWS_PER_FILE", 100)
    first = recommend_all(
        model, tmp_path, model_version="1", k=2, memory_budget=16 * data.n_items * 10, threads=1
    )
    monkeypatch.setattr(batch, "ROWS_PER_FILE", 10_000)
    second = recommend_all(model, tmp_path, model_version="1", k=2)
    assert len(first.files) > 1 and len(second.files) == 1
    assert len(list((tmp_path / "model_version=1").glob("*.parquet"))) == 1


def test_bad_arguments(data, tmp_path):
    model = create("popularity").fit(data)
    with pytest.raises(ConfigError, match="positive"):
        recommend_all(model, tmp_path, model_version="1", k=0)
    with pytest.raises(ConfigError, match="without '/'"):
        recommend_all(model, tmp_path, model_version="a/b")
    with pytest.raises(ConfigError, match="empty"):
        recommend_all(model, tmp_path, model_version="1", users=[])


def test_writes_to_s3(data, s3_endpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("RECSYS_S3_ENDPOINT_URL", s3_endpoint)
    client = files.s3_client()
    client.create_bucket(Bucket="recs")
    client.put_object(Bucket="recs", Key="daily/model_version=4/part-00009.parquet", Body=b"old")
    model = create("sgd-mf", {"epochs": 2, "factors": 4}).fit(data)
    result = recommend_all(model, "s3://recs/daily", model_version="4", k=3)
    assert result.location == "s3://recs/daily/model_version=4"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="recs")["Contents"])
    assert keys == ["daily/model_version=4/_SUCCESS", "daily/model_version=4/part-00000.parquet"]
    local = tmp_path / "part.parquet"
    client.download_file("recs", keys[1], str(local))
    assert len(pd.read_parquet(local)) == result.rows == data.n_users * 3
    with pytest.raises(DataError, match="cannot prepare s3://missing-bucket"):
        recommend_all(model, "s3://missing-bucket/x", model_version="4")


def test_ties_and_lists_longer_than_the_unseen_items_match_the_offline_top_k(data, tmp_path):
    # popularity: many items share a count, so the order of ties is visible; k is the whole
    # catalogue, longer than any user's unseen items, so every list ends early
    model = create("popularity").fit(data)
    assert np.unique(model.item_popularity_).size < data.n_items / 2
    k = data.n_items
    result = recommend_all(model, tmp_path, model_version="1", k=k, threads=2)
    frame = pd.read_parquet(result.location)
    users = list(data.users.ids[:30])
    expected = model.recommend(users, k)
    for user in users:
        got = frame[frame.user == user].sort_values("rank")
        want = expected[expected.user == user].sort_values("rank")
        assert list(got["item"]) == list(want["item"].astype(str))
        assert list(got["rank"]) == list(range(1, len(want) + 1))
        seen = data.matrix[data.users.index([user])[0]].nnz
        assert len(got) == data.n_items - seen
