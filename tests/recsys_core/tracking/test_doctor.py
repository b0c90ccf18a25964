"""The doctor's registry check: aliased versions whose model_state/ is missing are reported;
which version serves each role, and a leftover single ``champion`` alias."""

import mlflow

from recsys_core.tracking import registry
from recsys_core.tracking.doctor import check_registry_artifacts, run_checks


def test_registry_with_every_artifact_is_fine(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    checks = check_registry_artifacts(mlflow.get_tracking_uri())
    assert [(c.name, c.ok) for c in checks] == [("serving roles of regtest", True),
                                                ("registry artifacts", True)]
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
    assert roles.detail == ("ranking: none, rating: v1; the alias 'champion' (v1) is no longer "
                            "served")
    assert "set champion-ranking and/or champion-rating to version 1" in roles.fix
