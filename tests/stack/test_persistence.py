"""What the loopback stack holds survives ``make stack-down`` / ``make stack-up``: the S3 objects
(the registry in PostgreSQL points at them), and the deployments as they were changed on the
server. Applying ``prefect.yaml`` creates the work pool it names when the server lacks it.

One down/up cycle serves every test of the module (the ``cycled`` fixture)."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODEL = "persist"
PROBE = b"user,item,rating\n1,2,4\n"
PROBE_KEY = "persistence/probe.csv"
EDITED_CRON = "15 2 * * 1"


def _train(stack, cwd: Path) -> subprocess.CompletedProcess:
    """``recsys train`` as a user runs it against the stack (tiny data, same seed each time).

    Judged against the rating champion and the thresholds only: on the tiny data the model's
    margin over the bias baseline is too thin to rest a test on (it ranks below popularity, so
    it is promoted for the rating role only)."""
    return subprocess.run(
        [
            str(BIN / "recsys"),
            "train",
            "--synthetic-size",
            "tiny",
            "--registered-model",
            MODEL,
            "--experiment",
            MODEL,
            "--set",
            "gate.rating.require_beat_baseline=false",
        ],
        cwd=cwd,
        env=stack.client_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _deployment(stack):
    from prefect.client.orchestration import get_client

    with stack.prefect_api(), get_client(sync_client=True) as client:
        return client.read_deployment_by_name("training/train-daily")


def _artifact_keys(stack, version: str) -> list[str]:
    client = stack.mlflow()
    run = client.get_run(client.get_model_version(MODEL, version).run_id)
    prefix = f"artifacts/{run.info.experiment_id}/{run.info.run_id}/artifacts/"
    pages = (
        stack.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=stack.env["S3_BUCKET_ARTIFACTS"], Prefix=prefix)
    )
    return [obj["Key"][len(prefix) :] for page in pages for obj in page.get("Contents", [])]


@pytest.fixture(scope="module")
def cycled(stack, tmp_path_factory):
    """Train once, change the daily schedule in the server (as in the UI), put a data file,
    then ``stack-down`` and ``stack-up`` (which applies ``prefect.yaml`` again)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.exceptions import ObjectNotFound

    work = tmp_path_factory.mktemp("persistence")
    first = _train(stack, work)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    champion = stack.alias(MODEL)
    assert champion is not None, first.stdout[-2000:]
    keys_before = _artifact_keys(stack, champion)
    stack.s3().put_object(Bucket=stack.env["S3_BUCKET_DATA"], Key=PROBE_KEY, Body=PROBE)

    try:
        deployment = _deployment(stack)
    except ObjectNotFound:  # this module alone: nothing deployed yet
        out = stack.script("deploy")
        assert out.returncode == 0, out.stdout + out.stderr
        deployment = _deployment(stack)
    schedule = deployment.schedules[0]
    with stack.prefect_api(), get_client(sync_client=True) as client:
        client.update_deployment_schedule(
            deployment.id,
            schedule.id,
            active=False,
            schedule=CronSchedule(cron=EDITED_CRON, timezone="UTC"),
        )

    stack.restart(deploy=True)
    return {
        "champion": champion,
        "keys": keys_before,
        "work": work,
        "schedules": len(deployment.schedules),
    }


def test_objects_survive_down_and_up_and_the_next_training_meets_its_champion(stack, cycled):
    body = stack.s3().get_object(Bucket=stack.env["S3_BUCKET_DATA"], Key=PROBE_KEY)["Body"]
    assert body.read() == PROBE
    champion = cycled["champion"]
    keys = _artifact_keys(stack, champion)
    assert sorted(keys) == sorted(cycled["keys"])
    assert "model_state/state.npz" in keys

    second = _train(stack, cycled["work"])
    # same data, same seed, same model: the gate compares it with the champion, loaded from its
    # artifacts (the judged model, evaluated_state/), and refuses it for not improving (exit
    # code 3). A champion lost with its
    # artifacts would be "unavailable" and let this copy through on the thresholds alone.
    assert second.returncode == 3, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Traceback" not in second.stderr, second.stderr[-3000:]
    client = stack.mlflow()
    versions = client.search_model_versions(f"name = '{MODEL}'")
    newest = max(versions, key=lambda v: int(v.version))
    assert len(versions) == 2 and newest.version != champion, second.stdout[-2000:]
    assert newest.tags.get("status") == "refused", (newest.tags, second.stdout[-2000:])
    assert stack.alias(MODEL) == champion


def test_a_schedule_changed_on_the_server_survives_a_restart_and_redeploy(stack, cycled):
    from prefect.client.orchestration import get_client

    deployment = _deployment(stack)
    assert len(deployment.schedules) == cycled["schedules"]
    edited = deployment.schedules[0]
    assert edited.schedule.cron == EDITED_CRON and edited.active is False
    assert deployment.paused is False
    # the definition itself was applied again: the job variables come from prefect.yaml
    assert deployment.job_variables["working_dir"] == str(ROOT)

    # asked for explicitly, the schedules of prefect.yaml come back
    out = stack.script("deploy", "--reset-schedules")
    assert out.returncode == 0, out.stdout + out.stderr
    reset = _deployment(stack)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (train,) = [d for d in spec["deployments"] if d["name"] == "train-daily"]
    assert reset.schedules[0].schedule.cron == train["schedules"][0]["cron"]
    # the daily tick must not start a full-size training in the middle of the suite
    with stack.prefect_api(), get_client(sync_client=True) as client:
        for schedule in reset.schedules:
            client.update_deployment_schedule(reset.id, schedule.id, active=False)


def test_applying_the_deployments_creates_a_missing_work_pool(stack, tmp_path):
    from prefect.client.orchestration import get_client

    pool = f"recsys-probe-{uuid.uuid4().hex[:8]}"
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (train,) = [d for d in spec["deployments"] if d["name"] == "train-daily"]
    probe = {
        **train,
        "name": f"probe-{pool}",
        "schedules": [],
        "work_pool": {**train["work_pool"], "name": pool},
    }
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(yaml.safe_dump({**spec, "deployments": [probe]}))

    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "infra" / "deployments" / "apply.py"),
            "--prefect-file",
            str(prefect_file),
        ],
        cwd=ROOT,
        env=stack.client_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    with stack.prefect_api(), get_client(sync_client=True) as client:
        try:
            assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
            assert f"work pools created: {pool}" in out.stdout
            assert client.read_work_pool(pool).type == "process"
            deployment = client.read_deployment_by_name(f"training/probe-{pool}")
            assert deployment.work_pool_name == pool
        finally:
            for d in client.read_deployments():
                if d.name == f"probe-{pool}":
                    client.delete_deployment(d.id)
            client.delete_work_pool(pool)
