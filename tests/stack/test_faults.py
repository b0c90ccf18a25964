"""Faults during a deployment run: the tracking server or the S3 server goes away.

Back within the retry window of the I/O tasks (2, 5, 15 s), the run completes; left down, the run
fails saying which server, and no champion alias moves (those runs retry as often, one second
apart, and MLflow's client does not retry each request: the outcome is the same, a minute
sooner). The loopback S3 server saves its objects when it stops and restores them when it
starts; the S3 cases still use a model of their own.
"""

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.slow]

BASE = {"data": {"synthetic_size": "tiny"}, "experiment": "e2e"}
# the rating role judged on the thresholds only (as in test_e2e): the run that must be promoted
# is, whatever the tiny data says of sgd-mf's defaults against the bias baseline
RELAXED = {"rating": {"require_beat_baseline": False}}
# the environment of the runs that must fail: every retry, without the waits
GIVE_UP_SOONER = {"RECSYS_IO_RETRY_DELAYS": "1,1,1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def _host_port(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


def test_tracking_server_back_within_the_retry_window(stack):
    stack.stop("mlflow")
    try:
        flow_run = stack.trigger({**BASE, "registered_model": "e2e"})
        retried = stack.wait_for_retry(flow_run.id)
    finally:
        stack.start("mlflow")
    assert retried is not None and retried.startswith("start-run")
    final = stack.wait_final(flow_run.id)
    assert final.state.is_completed(), final.state.message
    assert stack.mlflow_run_of(flow_run.id).info.status == "FINISHED"


def test_tracking_server_left_down_fails_the_run_and_champion_stays(stack):
    champion = stack.alias("e2e")
    assert champion is not None
    stack.stop("mlflow")
    try:
        flow_run = stack.trigger({**BASE, "registered_model": "e2e"}, env=GIVE_UP_SOONER)
        final = stack.wait_final(flow_run.id)
    finally:
        stack.start("mlflow")
    assert final.state.is_failed()
    message = final.state.message
    assert _host_port(stack.env["MLFLOW_TRACKING_URI"]) in message, message
    assert "mlflow" in message.lower()
    assert stack.alias("e2e") == champion


def test_s3_back_within_the_retry_window(stack):
    stack.stop("s3")
    try:
        flow_run = stack.trigger({**BASE, "registered_model": "e2e-s3", "gate": RELAXED})
        retried = stack.wait_for_retry(flow_run.id)
    finally:
        stack.start("s3")  # the objects saved at the stop are restored
    final = stack.wait_final(flow_run.id)
    assert retried is not None, f"the run failed without retrying: {final.state.message[:300]}"
    assert final.state.is_completed(), final.state.message
    run = stack.mlflow_run_of(flow_run.id)
    assert stack.alias("e2e-s3") == run.data.tags["recsys.model_version"]
    prefix = f"artifacts/{run.info.experiment_id}/{run.info.run_id}/artifacts/"
    listed = stack.s3().list_objects_v2(Bucket=stack.env["S3_BUCKET_ARTIFACTS"], Prefix=prefix)
    assert listed.get("KeyCount", 0) > 0


def test_s3_left_down_fails_the_run_and_nothing_is_aliased(stack):
    # the e2e model's champion is registered in PostgreSQL whatever the S3 server lost
    champion = stack.alias("e2e")
    challenger = stack.alias("e2e", "challenger")
    assert champion is not None
    stack.stop("s3")
    try:
        flow_run = stack.trigger({**BASE, "registered_model": "e2e"}, env=GIVE_UP_SOONER)
        final = stack.wait_final(flow_run.id)
    finally:
        stack.start("s3")
    assert final.state.is_failed()
    run = stack.mlflow_run_of(flow_run.id)
    assert run.info.status == "FAILED"
    assert "recsys.model_version" not in run.data.tags  # nothing registered half-way
    assert stack.alias("e2e") == champion
    assert stack.alias("e2e", "challenger") == challenger
    message = final.state.message
    assert "mlflow-artifacts" in message, message
    endpoint = _host_port(stack.env["AWS_ENDPOINT_URL"])
    assert "S3" in message and endpoint in message, message
