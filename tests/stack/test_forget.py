"""The right to be forgotten on the loopback stack: train -> serve -> ``recsys forget`` -> the
user's events are gone, tombstone and audit are there, every version's state in S3 lacks the
user, the service answers them as new at once, the next training run neither holds nor sees
them, and forgetting again is a no-op with its own audit record.

Training runs as ``recsys train`` against the stack; the event store is the stack's, whose
tombstones its service reads (no restart: ``recsys forget`` asks the running service to refresh)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from recsys_core.data.synthetic import config_for, generate
from recsys_core.events import EventStore
from recsys_core.events.tables import events, forget_audit, tombstones
from recsys_core.features.ids import IdVocab
from recsys_core.privacy.forget import user_key

pytestmark = pytest.mark.stack

BIN = Path(sys.executable).parent
MODEL = "e2e"  # the registered model the stack's service serves (conftest)


# every route but /health and /ready needs the API key the stack handed its clients
HEADERS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _api_key(stack):
    HEADERS.update(stack.serve_headers)


def _train(stack, cwd: Path, env: dict) -> object:
    """``recsys train`` against the stack (tiny data); the MLflow run it made."""
    out = subprocess.run(
        [
            str(BIN / "recsys"),
            "train",
            "--synthetic-size",
            "tiny",
            "--registered-model",
            MODEL,
            "--experiment",
            "forget-e2e",
            "--set",
            "gate.rating.require_beat_baseline=false",
            "--set",
            "gate.ranking.require_beat_baseline=false",
            "--set",
            "gate.ranking.baseline_guards=[]",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode in (0, 3), out.stdout[-2000:] + out.stderr[-2000:]  # 3: refused
    client = stack.mlflow()
    exp = client.get_experiment_by_name("forget-e2e")
    return client.search_runs(
        [exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )[0]


def _served(url: str, user: str) -> dict:
    return httpx.get(
        f"{url}/recommendations/{user}", params={"k": 5}, headers=HEADERS, timeout=10
    ).json()


def _wait_serving(url: str, version: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (
                httpx.get(f"{url}/model", headers=HEADERS, timeout=5).json()["ranking"]["version"]
                == version
            ):
                return
        except (httpx.HTTPError, KeyError):
            pass
        assert time.monotonic() < deadline, f"the service never served version {version}"
        time.sleep(0.5)


def _vocab_in_s3(stack, run) -> list[str]:
    """The user vocabulary of a run's model_state, read from the bucket with boto3."""
    key = (
        f"artifacts/{run.info.experiment_id}/{run.info.run_id}/artifacts/model_state/user_ids.json"
    )
    body = stack.s3().get_object(Bucket=stack.env["S3_BUCKET_ARTIFACTS"], Key=key)["Body"]
    return json.loads(body.read())


def test_forget_a_user_end_to_end(stack, tmp_path):
    # the stack's event store, as its owner (forget deletes): the one the service reads its
    # tombstones from
    url = stack.env["RECSYS_EVENTS_OWNER_URL"]
    store = EventStore(url)
    store.upgrade()
    with store.engine.begin() as conn:  # earlier stack tests' events and forget requests
        for table in (events, tombstones, forget_audit):
            conn.execute(table.delete())
    frame = generate(config_for("tiny", seed=42)).interactions
    # not the most active user: the serving test asks for that one
    victim, other = (str(u) for u in frame["user"].value_counts().index[[4, 5]])
    store.append(
        [
            {"event_id": f"e{n}", "user_id": u, "item_id": "1", "type": "click"}
            for n, u in enumerate([victim, victim, other])
        ]
    )
    data_dir = tmp_path / ".recsys" / "data"  # recsys train's default, in its working folder
    env = {**stack.client_env(), "RECSYS_EVENTS_URL": url, "RECSYS_ACTOR": "dpo"}
    serve = stack.env["RECSYS_SERVE_URL"]
    try:
        run1 = _train(stack, tmp_path, env)
        version = run1.data.tags["recsys.model_version"]
        # this version, or an earlier champion
        _wait_serving(serve, stack.alias(MODEL, "champion-ranking"))
        assert _served(serve, victim)["fallback"] is None
        assert victim in _vocab_in_s3(stack, run1)

        cmd = [
            str(BIN / "recsys"),
            "forget",
            "--user",
            victim,
            "--reason",
            "request 12",
            "--data-dir",
            str(data_dir),
            "--registered-model",
            MODEL,
            "--json",
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["outcome"] == "done" and report["service"].startswith("refreshed")
        assert report["event_store"]["events"] == 2

        # the service answers the user as new at once
        assert _served(serve, victim)["fallback"] == "popularity"
        assert _served(serve, other)["fallback"] is None
        # events gone, tombstone and audit there
        with store.engine.connect() as conn:
            assert conn.execute(select(events.c.user_id)).scalars().all() == [other]
            assert conn.execute(select(tombstones.c.user_key)).scalars().all() == [user_key(victim)]
            audit = conn.execute(select(forget_audit)).mappings().one()
        assert audit["actor"] == "dpo" and audit["outcome"] == "done"
        # every version of the model, in S3, without the user
        client = stack.mlflow()
        for mv in client.search_model_versions(f"name = '{MODEL}'"):
            held = _vocab_in_s3(stack, client.get_run(mv.run_id))
            assert victim not in held, f"version {mv.version} still holds the user"
        # the user left each saved state of the version: model_state, the MLflow model, and
        # evaluated_state when the served model is a refit
        folders = 3 if run1.data.tags.get("recsys.refit") == "served" else 2
        assert client.get_model_version(MODEL, version).tags["forget.rewritten"] == str(folders)

        # the next run: trained without the user, with the audit since the previous run
        run2 = _train(stack, tmp_path, env)
        assert victim not in _vocab_in_s3(stack, run2)
        assert len(IdVocab(_vocab_in_s3(stack, run2))) > 0
        path = client.download_artifacts(
            run2.info.run_id, "privacy/forget_audit.json", str(tmp_path)
        )
        logged = json.loads(Path(path).read_text())
        assert [r["user_key"] for r in logged["records"]] == [user_key(victim)]

        # forgetting again: nothing to do, one more audit record
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and json.loads(again.stdout)["outcome"] == "nothing-found"
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(forget_audit)).scalar() == 2
    finally:
        store.close()
