"""The doctor's registry check: aliased versions whose model_state/ is missing are reported;
which version serves each role, and a leftover single ``champion`` alias."""

import socket

import mlflow

from recsys_core.tracking import registry
from recsys_core.tracking.doctor import check_buckets, check_registry_artifacts, run_checks


def test_registry_with_every_artifact_is_fine(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    checks = check_registry_artifacts(mlflow.get_tracking_uri())
    assert [(c.name, c.ok) for c in checks] == [
        ("serving roles of regtest", True),
        ("registry artifacts", True),
    ]
    assert checks[0].detail == "ranking: v1, rating: none"
    assert "1 aliased version(s) in 1 registered model(s)" in checks[1].detail


def test_missing_artifacts_of_aliased_versions_are_reported(new_version, delete_run_artifacts):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")  # v1 champion, v2 challenger
    delete_run_artifacts(v1.run_id)
    delete_run_artifacts(v2.run_id)
    checks = check_registry_artifacts(mlflow.get_tracking_uri())
    assert [(c.name, c.ok) for c in checks] == [
        ("serving roles of regtest", True),
        ("artifacts of regtest v1 (champion-ranking)", False),
        ("artifacts of regtest v2 (challenger)", False),
    ]
    assert "model_state/ of run" in checks[1].detail and "missing" in checks[1].detail
    assert "roll back" in checks[1].fix


def test_run_checks_looks_at_the_embedded_store(new_version, delete_run_artifacts):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    delete_run_artifacts(v1.run_id)
    checks = run_checks(env={})  # no MLFLOW_TRACKING_URI: the embedded store of this folder
    failed = [c.name for c in checks if not c.ok]
    assert failed == ["artifacts of regtest v1 (challenger, champion-ranking)"]


def test_a_leftover_champion_alias_is_reported_with_the_way_forward(new_version):
    v1 = new_version()
    mlflow.MlflowClient().set_registered_model_alias("regtest", "champion", v1.version)
    registry.promote(v1, {}, expected=None, alias="champion-rating")
    roles = check_registry_artifacts(mlflow.get_tracking_uri())[0]
    assert (roles.name, roles.ok) == ("serving roles of regtest", False)
    assert roles.detail == (
        "ranking: none, rating: v1; the alias 'champion' (v1) is no longer served"
    )
    assert "set champion-ranking and/or champion-rating to version 1" in roles.fix


def test_a_fresh_store_is_a_state_with_the_next_step(store):
    checks = run_checks(env={})  # the embedded store of a fresh clone: nothing registered
    assert [c.name for c in checks if not c.ok] == []
    registry_check = next(c for c in checks if c.name == "registry")
    assert registry_check.state and registry_check.ok
    assert registry_check.detail.startswith("no model promoted yet")
    assert "recsys train" in registry_check.fix


def test_a_version_that_no_gate_promoted_is_still_no_model_yet(new_version):
    new_version()  # registered, but its gate refused it: no role alias
    checks = check_registry_artifacts(mlflow.get_tracking_uri())
    assert [(c.name, c.ok, c.state) for c in checks] == [
        ("serving roles of regtest", True, False),
        ("registry artifacts", True, False),
        ("registry", True, True),
    ]
    assert checks[-1].detail == "no model promoted yet (registered models: regtest)"


def test_a_promoted_version_is_not_a_fresh_state(new_version):
    registry.promote(new_version(), {}, expected=None, alias="champion-ranking")
    assert not any(c.state for c in check_registry_artifacts(mlflow.get_tracking_uri()))


def test_a_tracking_server_down_still_fails(store):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    checks = run_checks(env={"MLFLOW_TRACKING_URI": uri})
    down = next(c for c in checks if c.name == "tracking server")
    assert not down.ok and not down.state and "unreachable" in down.detail


def test_a_missing_bucket_still_fails(store, s3_endpoint):
    import boto3

    env = {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "S3_BUCKET_DATA": "doctor-present",
    }
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    ).create_bucket(Bucket="doctor-present")
    assert [c.ok for c in check_buckets(env)] == [True]
    missing = check_buckets({**env, "S3_BUCKET_DATA": "doctor-missing"})
    assert [(c.name, c.ok, c.state) for c in missing] == [
        ("S3 bucket doctor-missing", False, False)
    ]
    assert "NoSuchBucket" in missing[0].detail and "create it" in missing[0].fix
