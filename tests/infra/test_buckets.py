"""infra/storage/buckets.py against a real (in-process) moto S3 server over HTTP."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location(
        "recsys_infra_buckets_test", ROOT / "infra" / "storage" / "buckets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def s3_server(s3_endpoint):
    _reset(s3_endpoint)  # moto's state is per process: start from nothing
    return s3_endpoint


def _reset(endpoint: str) -> None:
    # what a restart of the loopback S3 server does: every bucket and object gone
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))


def test_objects_survive_a_save_reset_restore_cycle(s3_server, tmp_path):
    buckets = _module()
    s3 = buckets.client(s3_server, "k", "s")
    assert buckets.ensure_buckets(s3_server, "k", "s", ["mlflow", "data"]) == ["mlflow", "data"]
    assert buckets.ensure_buckets(s3_server, "k", "s", ["mlflow", "data"]) == []
    model = bytes(range(256)) * 40
    s3.put_object(
        Bucket="mlflow",
        Key="artifacts/1/abc/artifacts/model_state/state.npz",
        Body=model,
        ContentType="application/octet-stream",
        Metadata={"who": "run"},
    )
    s3.put_object(Bucket="mlflow", Key="artifacts/1/abc/artifacts/MLmodel", Body=b"flavors: {}")
    s3.put_object(Bucket="data", Key="ratings/a b+c.csv", Body=b"user,item,rating\n1,2,3\n")
    s3.put_object(Bucket="data", Key="copy.bin", Body=model)  # same bytes: one blob
    folder = tmp_path / "s3-objects"

    assert buckets.save_objects(s3, folder) == 4
    assert len(list((folder / "blobs").iterdir())) == 3
    _reset(s3_server)
    assert s3.list_buckets()["Buckets"] == []
    assert buckets.restore_objects(s3, folder) == 4

    got = s3.get_object(Bucket="mlflow", Key="artifacts/1/abc/artifacts/model_state/state.npz")
    assert got["Body"].read() == model
    assert got["ContentType"] == "application/octet-stream" and got["Metadata"] == {"who": "run"}
    assert s3.get_object(Bucket="data", Key="ratings/a b+c.csv")["Body"].read().startswith(b"user")
    assert s3.get_object(Bucket="data", Key="copy.bin")["Body"].read() == model


def test_a_new_save_replaces_the_last_whole_and_nothing_restores_nothing(s3_server, tmp_path):
    buckets = _module()
    s3 = buckets.client(s3_server, "k", "s")
    folder = tmp_path / "s3-objects"
    assert buckets.restore_objects(s3, folder) == 0  # never saved: a fresh stack
    buckets.ensure_buckets(s3_server, "k", "s", ["bkt"])
    s3.put_object(Bucket="bkt", Key="old", Body=b"1")
    buckets.save_objects(s3, folder)
    s3.delete_object(Bucket="bkt", Key="old")
    s3.put_object(Bucket="bkt", Key="new", Body=b"2")
    assert buckets.save_objects(s3, folder) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s3-objects"]  # no half-written copy
    _reset(s3_server)
    buckets.restore_objects(s3, folder)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="bkt").get("Contents", [])]
    assert keys == ["new"]
