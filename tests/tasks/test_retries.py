"""The retry policy of the I/O tasks: attempts counted under injected failures, retries and
delays from RECSYS_IO_RETRIES / RECSYS_IO_RETRY_DELAYS passed to Prefect with
``Task.with_options`` (once per flow run, or when a task is called on its own), and errors
that cannot succeed never retried."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from recsys_core.data.config import DataConfig
from recsys_core.evaluation.gate import GateConfig, decide
from recsys_core.exceptions import (
    ConfigError,
    DataError,
    DataSourceError,
    DataValidationError,
    GateRejectedError,
    StalePromotionError,
    TrackingError,
    TrainingError,
)
from recsys_core.tracking import mlflow_run, registry
from tasks import _runtime
from tasks.collect import collect_snapshot
from tasks.gate import promote
from tasks.tracking import artifact_store_error, log_to_run

# tasks called on their own (no flow run) log locally only
pytestmark = pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send")


def _no_such_bucket():
    return ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "PutObject")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionError("reset"), True),
        (TimeoutError("slow"), True),
        (TrackingError("server 503"), True),
        (MlflowException("API request failed: 503"), True),
        (EndpointConnectionError(endpoint_url="http://s3"), True),
        (ClientError({"Error": {"Code": "SlowDown"}}, "PutObject"), True),
        (RuntimeError("unknown"), True),
        (DataError("bad rows"), False),
        (DataSourceError("a folder"), False),
        (DataValidationError("rating out of range"), False),
        (ConfigError("factors"), False),
        (TrainingError("diverged"), False),
        (GateRejectedError("refused"), False),
        (StalePromotionError("moved"), False),
        (MlflowException("no such model", RESOURCE_DOES_NOT_EXIST), False),
        (_no_such_bucket(), False),
        (FileNotFoundError("x"), False),
        (TypeError("bug"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_transient(exc, transient):
    assert _runtime.is_transient(exc) is transient


def test_a_tracking_error_is_as_transient_as_its_cause():
    def wrapped(cause):
        try:
            try:
                raise cause
            except Exception as exc:
                raise artifact_store_error("r1", exc) from exc  # as log_to_run raises it
        except TrackingError as exc:
            return exc

    assert _runtime.is_transient(wrapped(EndpointConnectionError(endpoint_url="http://s3")))
    assert not _runtime.is_transient(wrapped(_no_such_bucket()))


def test_a_source_error_is_as_transient_as_its_cause(tmp_path):
    from sqlalchemy.exc import OperationalError

    from recsys_core.data.database import load_database

    with pytest.raises(DataSourceError) as down:  # nothing listens on port 1
        load_database("postgresql://reader@127.0.0.1:1/events?table=events")
    assert isinstance(down.value.__cause__, OperationalError)
    assert _runtime.is_transient(down.value)  # the collect task retries a database that is down
    with pytest.raises(DataSourceError) as missing:
        load_database(f"sqlite:///{tmp_path}/empty.db?table=events")
    assert not _runtime.is_transient(missing.value)  # a missing table is not retried


def test_an_s3_source_that_cannot_be_reached_is_not_retried_by_the_task():
    # the S3 client has spent its own attempts and timeouts (RECSYS_S3_*): a task retry would
    # multiply them past the minute a silent endpoint may cost
    from botocore.exceptions import ReadTimeoutError

    try:
        try:
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9")
        except ReadTimeoutError as exc:
            raise DataSourceError("cannot reach S3 at http://127.0.0.1:9") from exc
    except DataSourceError as exc:
        assert not _runtime.is_transient(exc)


def test_settings_are_passed_to_prefect_with_options(monkeypatch):
    monkeypatch.delenv("RECSYS_IO_RETRIES", raising=False)
    monkeypatch.delenv("RECSYS_IO_RETRY_DELAYS", raising=False)
    assert _runtime.io_retries() == 3
    default = _runtime.retried(promote)
    assert (default.retries, default.retry_delay_seconds) == (3, [2, 5, 15])
    assert default.retry_condition_fn is _runtime.retry_condition_fn  # the rest is kept
    monkeypatch.setenv("RECSYS_IO_RETRIES", "1")
    monkeypatch.setenv("RECSYS_IO_RETRY_DELAYS", "0.5, 4")
    # what Prefect's engine reads from the task when it schedules a retry
    configured = _runtime.retried(promote)
    assert (configured.retries, configured.retry_delay_seconds) == (1, [0.5, 4])
    # a flow run reads them once, at its start: a change during the run is not seen
    token = _runtime.configure_retries()
    try:
        monkeypatch.setenv("RECSYS_IO_RETRIES", "7")
        assert _runtime.retried(promote).retries == 1
    finally:
        _runtime.release_retries(token)
    assert _runtime.retried(promote).retries == 7
    monkeypatch.setenv("RECSYS_IO_RETRIES", "many")
    with pytest.raises(ConfigError, match="RECSYS_IO_RETRIES='many'"):
        _runtime.retried(promote)
    monkeypatch.setenv("RECSYS_IO_RETRIES", "1")
    monkeypatch.setenv("RECSYS_IO_RETRY_DELAYS", "1,-2")
    with pytest.raises(ConfigError, match="cannot be negative"):
        _runtime.io_retry_delays()


def test_mlflow_write_retried_as_many_times_as_set(workspace, monkeypatch, faults):
    run_id = mlflow_run.start_run("retries", "r")
    monkeypatch.setenv("RECSYS_IO_RETRIES", "3")
    flaky = faults(mlflow_run.set_tags, ConnectionError("tracking server reset"), n=2)
    monkeypatch.setattr("tasks.tracking.mlflow_run.set_tags", flaky)
    _runtime.retried(log_to_run)(run_id, tags={"recsys.probe": "written"})
    assert flaky.calls == 3  # two failures, then the write
    assert MlflowClient().get_run(run_id).data.tags["recsys.probe"] == "written"

    monkeypatch.setenv("RECSYS_IO_RETRIES", "1")
    down = faults(mlflow_run.set_tags, ConnectionError("tracking server down"))
    monkeypatch.setattr("tasks.tracking.mlflow_run.set_tags", down)
    with pytest.raises(ConnectionError):
        _runtime.retried(log_to_run)(run_id, tags={"recsys.probe": "again"})
    assert down.calls == 2  # the first attempt and one retry


def test_s3_write_retried_when_transient_only(workspace, monkeypatch, faults, tmp_path):
    run_id = mlflow_run.start_run("retries", "r")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "p.txt").write_text("x")
    monkeypatch.setenv("RECSYS_IO_RETRIES", "2")
    flaky = faults(mlflow_run.log_artifacts, EndpointConnectionError(endpoint_url="http://s3"), n=2)
    monkeypatch.setattr("tasks.tracking.mlflow_run.log_artifacts", flaky)
    _runtime.retried(log_to_run)(run_id, artifacts=[(str(tmp_path / "plots"), "plots")])
    assert flaky.calls == 3
    assert [a.path for a in MlflowClient().list_artifacts(run_id, "plots")] == ["plots/p.txt"]

    missing = faults(mlflow_run.log_artifacts, _no_such_bucket())
    monkeypatch.setattr("tasks.tracking.mlflow_run.log_artifacts", missing)
    with pytest.raises(TrackingError, match="artifact store"):
        _runtime.retried(log_to_run)(run_id, artifacts=[(str(tmp_path / "plots"), "plots")])
    assert missing.calls == 1  # a missing bucket does not appear by retrying


def test_bad_source_is_not_retried(workspace, monkeypatch, faults):
    monkeypatch.setenv("RECSYS_IO_RETRIES", "3")
    from recsys_core.data import incremental

    # the collect task reads through recsys_core.data.incremental
    counted = faults(incremental.collect, None)
    monkeypatch.setattr(incremental, "collect", counted)
    with pytest.raises(DataSourceError, match="is a folder"):
        _runtime.retried(collect_snapshot)(
            DataConfig(source=str(workspace)), str(workspace / "data")
        )
    assert counted.calls == 1


@pytest.fixture
def two_versions(workspace):
    versions = []
    for _ in range(2):
        run_id = mlflow_run.start_run("retries", "r")
        versions.append(
            registry.register(
                "retrytest", f"runs:/{run_id}/model_state", run_id, {"status": "candidate"}
            )
        )
    registry.promote(versions[0], {}, expected=None, alias="champion-rating")
    return versions


def _decision(judged: str | None):
    return decide(
        {"rmse": 0.8},
        config=GateConfig(),
        primary="rmse",
        baseline={"rmse": 0.9},
        champion={"rmse": 0.95},
        champion_version=judged,
    )


def test_promotion_retried_after_the_alias_moved_converges(two_versions, monkeypatch, faults):
    v1, v2 = two_versions
    monkeypatch.setenv("RECSYS_IO_RETRIES", "3")
    real = registry.tag_version
    attempts = []

    def fail_after_alias_move(ref, tags):
        if tags.get("role.rating") == "replaced" and not attempts:
            attempts.append(registry.get_alias("retrytest", "champion-rating").version)
            raise ConnectionError("tracking server reset after the alias moved")
        return real(ref, tags)

    counted = faults(registry.promote, None)
    monkeypatch.setattr("tasks.gate.registry.promote", counted)
    monkeypatch.setattr(registry, "tag_version", fail_after_alias_move)
    previous = _runtime.retried(promote)(v2, _decision(v1.version), {"run_id": "r2"}, "rating")
    assert attempts == ["2"] and counted.calls == 2
    assert previous == "1"
    tags = MlflowClient().get_model_version("retrytest", "2").tags
    assert (tags["role.rating"], tags["role.rating.previous"], tags["run_id"]) == (
        "champion",
        "1",
        "r2",
    )
    assert "gate.rating.reasons" in tags
    assert MlflowClient().get_model_version("retrytest", "1").tags["role.rating"] == "replaced"
    assert registry.rollback("retrytest", alias="champion-rating")[1].version == "1"


def test_stale_promotion_is_not_retried(two_versions, monkeypatch, faults):
    v1, v2 = two_versions
    monkeypatch.setenv("RECSYS_IO_RETRIES", "3")
    counted = faults(registry.promote, None)
    monkeypatch.setattr("tasks.gate.registry.promote", counted)
    # judged when there was no champion
    with pytest.raises(
        StalePromotionError, match="champion-rating of 'retrytest' is version 1 now"
    ):
        _runtime.retried(promote)(v2, _decision(None), {"run_id": "r2"}, "rating")
    assert counted.calls == 1
    assert registry.get_alias("retrytest", "champion-rating").version == "1"


def test_no_retry_when_set_to_zero(workspace, monkeypatch, faults):
    run_id = mlflow_run.start_run("retries", "r")
    monkeypatch.setenv("RECSYS_IO_RETRIES", "0")
    down = faults(mlflow_run.set_tags, ConnectionError("down"))
    monkeypatch.setattr("tasks.tracking.mlflow_run.set_tags", down)
    with pytest.raises(ConnectionError):
        _runtime.retried(log_to_run)(run_id, tags={"a": "b"})
    assert down.calls == 1
