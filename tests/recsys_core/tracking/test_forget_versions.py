"""Forgetting users in registered versions: both stored copies of the model state (the run's
``model_state/`` and the logged model's ``model_dir``) lose the user, in a local file store and
in S3 (moto's server over HTTP); a store that goes away mid-way is completed by a re-run."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import TrackingError
from recsys_core.features import Interactions
from recsys_core.features.ids import IdVocab
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, pyfunc, registry
from recsys_core.tracking.forget_versions import (
    REWRITTEN_TAG,
    forget_in_versions,
    logged_model_id,
)
from recsys_core.tracking.state_digest import DIGEST_TAG, state_digest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    return (
        create("sgd-mf", {"epochs": 2, "factors": 4})
        .fit(data)
        .save(tmp_path_factory.mktemp("sgd") / "model")
    )


def _version(
    model_dir, experiment="forget-test", name="recsys", quarantine: Path | None = None
) -> registry.VersionRef:
    run_id = mlflow_run.start_run(experiment, "r")
    mlflow_run.log_artifacts(run_id, model_dir, "model_state")
    if quarantine is not None:
        mlflow_run.log_artifact(run_id, quarantine, "validation")
    info = pyfunc.log_saved(model_dir, run_id)
    return registry.register(
        name,
        info.model_uri,
        run_id,
        {"status": "candidate"},
        model_id=getattr(info, "model_id", None),
        state_dir=model_dir,
    )


def _user_sets(ref: registry.VersionRef) -> list[set[str]]:
    """The user vocabularies of both stored copies of a version's state."""
    client = mlflow.MlflowClient()
    mv = client.get_model_version(ref.name, ref.version)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        state = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path="model_state/user_ids.json", dst_path=tmp + "/a"
        )
        out.append(set(IdVocab.load(state).to_list()))
        root = client.get_logged_model(logged_model_id(mv)).artifact_location
        logged = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{root}/artifacts/model/user_ids.json", dst_path=tmp + "/b"
        )
        out.append(set(IdVocab.load(logged).to_list()))
    return out


def test_every_copy_of_every_version_loses_the_user(embedded_store, model_dir, tmp_path):
    users = IdVocab.load(model_dir / "user_ids.json").to_list()
    gone = users[4]
    quarantine = tmp_path / "quarantined.parquet"
    pd.DataFrame({"user": [gone, users[0]], "item": ["a", "b"]}).to_parquet(quarantine)
    v1 = _version(model_dir, quarantine=quarantine)
    v2 = _version(model_dir)
    done = forget_in_versions([gone, "pseudonym-not-there"], tmp_path / "staging")
    assert [(r.version, r.users_removed) for r in done] == [("1", 2), ("2", 2)]
    assert done[0].rows_removed == 1 and done[1].rows_removed == 0
    for ref in (v1, v2):
        for held in _user_sets(ref):
            assert gone not in held and len(held) == len(users) - 1
        tags = mlflow.MlflowClient().get_model_version(ref.name, ref.version).tags
        assert tags[REWRITTEN_TAG] == "2"  # two copies of the state, one user each
        # no tag holds the id (the state's digest is hex: a short id may occur in it by chance)
        assert gone not in "".join(v for k, v in tags.items() if k != DIGEST_TAG)
        assert tags[DIGEST_TAG] == state_digest(
            mlflow.artifacts.download_artifacts(
                run_id=ref.run_id,
                artifact_path="model_state",
                dst_path=str(tmp_path / f"d{ref.version}"),
            )
        )
    # the served model loads from the rewritten state
    loaded = registry_load(v1)
    assert gone not in loaded.user_vocab_.to_list()
    # the quarantined rows kept in the run lost the user's row
    client = mlflow.MlflowClient()
    path = mlflow.artifacts.download_artifacts(
        run_id=client.get_model_version("recsys", "1").run_id,
        artifact_path="validation/quarantined.parquet",
        dst_path=str(tmp_path / "q"),
    )
    assert pd.read_parquet(path)["user"].tolist() == [users[0]]
    # forgetting again changes nothing and moves no tag
    again = forget_in_versions([gone], tmp_path / "staging")
    assert not any(r.changed for r in again)
    assert client.get_model_version("recsys", "1").tags[REWRITTEN_TAG] == "2"
    assert not list((tmp_path / "staging").glob("*"))


def registry_load(ref):
    from recsys_core.tracking.model_store import load_recommender

    return load_recommender(ref)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_s3_going_away_mid_way_is_completed_by_a_rerun(
    embedded_store, model_dir, tmp_path, monkeypatch
):
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }.items():
            monkeypatch.setenv(k, v)
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(
            Bucket="artifacts"
        )
        users = IdVocab.load(model_dir / "user_ids.json").to_list()
        gone = users[7]
        local = _version(model_dir)  # version 1 in the local file store
        mlflow.MlflowClient().create_experiment("in-s3", artifact_location="s3://artifacts/e")
        remote = _version(model_dir, experiment="in-s3")  # version 2 in S3
        assert mlflow_run.artifact_uri(remote.run_id).startswith("s3://")
        server.stop()  # S3 goes away: version 1 is done, version 2 cannot be
        done: list = []
        with pytest.raises(TrackingError, match="run `recsys forget` again"):
            forget_in_versions([gone], tmp_path / "staging", done=done)
        assert [(r.version, r.changed) for r in done] == [("1", True)]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # the same in-process S3 state comes back
        done = forget_in_versions([gone], tmp_path / "staging")
        assert [(r.version, r.changed) for r in done] == [("1", False), ("2", True)]
        for ref in (local, remote):
            for held in _user_sets(ref):
                assert gone not in held
    finally:
        server.stop()
