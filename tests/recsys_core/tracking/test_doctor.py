"""The doctor's registry check: aliased versions whose model_state/ is missing are reported."""

import mlflow

from recsys_core.tracking import registry
from recsys_core.tracking.doctor import check_registry_artifacts, run_checks


def test_registry_with_every_artifact_is_fine(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    checks = check_registry_artifacts(mlflow.get_tracking_uri())
    assert [(c.name, c.ok) for c in checks] == [("registry artifacts", True)]
    assert "1 aliased version(s) in 1 registered model(s)" in checks[0].detail


def test_missing_artifacts_of_aliased_versions_are_reported(new_version, delete_run_artifacts):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")  # v1 champion, v2 challenger
    delete_run_artifacts(v1.run_id)
    delete_run_artifacts(v2.run_id)
    checks = check_registry_artifacts(mlflow.get_tracking_uri())
    assert [(c.name, c.ok) for c in checks] == [
        ("artifacts of regtest v1 (champion-ranking)", False),
        ("artifacts of regtest v2 (challenger)", False),
    ]
    assert "model_state/ of run" in checks[0].detail and "missing" in checks[0].detail
    assert "roll back" in checks[0].fix


def test_run_checks_looks_at_the_embedded_store(new_version, delete_run_artifacts):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    delete_run_artifacts(v1.run_id)
    checks = run_checks(env={})  # no MLFLOW_TRACKING_URI: the embedded store of this folder
    failed = [c.name for c in checks if not c.ok]
    assert failed == ["artifacts of regtest v1 (challenger, champion-ranking)"]
