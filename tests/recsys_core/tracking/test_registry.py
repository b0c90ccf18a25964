"""Registry operations on a real (sqlite) MLflow store: register, promote (compare-and-set,
idempotent, serialized), roll back."""

import threading

import mlflow
import pytest
from mlflow import MlflowClient

from recsys_core.exceptions import GateRejectedError, RecsysError, StalePromotionError
from recsys_core.tracking import registry

RATING = registry.ROLE_ALIASES[registry.RATING]


def _tags(version: registry.VersionRef | str, name: str = "regtest") -> dict[str, str]:
    v = version.version if isinstance(version, registry.VersionRef) else version
    return dict(MlflowClient().get_model_version(name, v).tags)


def _statuses(name: str = "regtest") -> dict[str, str]:
    return {
        str(mv.version): mv.tags.get("role.rating")
        for mv in MlflowClient().search_model_versions(f"name='{name}'")
    }


def test_register_promote_rollback(new_version):
    v1 = new_version()
    assert registry.get_alias("regtest", registry.CHALLENGER).version == v1.version
    assert registry.get_alias("regtest", RATING) is None
    assert registry.promote(v1, {"why": "first"}, expected=None, alias=RATING) is None
    v2 = new_version()
    previous = registry.promote(v2, {"why": "better"}, expected=v1.version, alias=RATING)
    assert previous.version == v1.version
    assert registry.get_alias("regtest", RATING).version == v2.version
    assert _tags(v2)["role.rating.previous"] == v1.version and _tags(v2)["why"] == "better"
    assert _statuses() == {"1": "replaced", "2": "champion"}
    assert _tags(v1)["role.rating.replaced_by"] == "2"
    old, new = registry.rollback("regtest", alias=RATING)
    assert (old.version, new.version) == (v2.version, v1.version)
    assert registry.get_alias("regtest", RATING).version == v1.version
    assert _statuses() == {"1": "champion", "2": "rolled_back"}
    with pytest.raises(RecsysError, match="nothing to roll back"):
        registry.rollback("regtest", alias=RATING)


def test_a_version_is_linked_from_its_logged_model(store, tiny_model_dir):
    # what the MLflow UI's model page reads to show the model registered and link its versions
    import json

    from recsys_core.tracking import mlflow_run, pyfunc

    run_id = mlflow_run.start_run("reg-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)
    ref = registry.register("linked", info.model_uri, run_id, {}, model_id=info.model_id)
    tags = MlflowClient().get_logged_model(info.model_id).tags
    assert json.loads(tags["mlflow.modelVersions"]) == [{"name": "linked", "version": ref.version}]
    registry._link_logged_model(info.model_id, "linked", ref.version)  # a retry links once
    tags = MlflowClient().get_logged_model(info.model_id).tags
    assert len(json.loads(tags["mlflow.modelVersions"])) == 1


def test_a_failed_link_keeps_the_version_and_its_alias(store, tiny_model_dir, monkeypatch, caplog):
    # the link is for the UI: a tracking server that refuses the tag loses only the link
    from mlflow.exceptions import MlflowException

    from recsys_core.tracking import mlflow_run, pyfunc

    run_id = mlflow_run.start_run("reg-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)

    def refuse(self, model_id, tags):
        raise MlflowException("the server refused the tag")

    monkeypatch.setattr(MlflowClient, "set_logged_model_tags", refuse)
    with caplog.at_level("WARNING", logger="recsys_core.tracking.registry"):
        ref = registry.register("unlinked", info.model_uri, run_id, {}, model_id=info.model_id)
    assert "not linked to its logged model" in caplog.text
    found = MlflowClient().get_model_version_by_alias("unlinked", registry.CHALLENGER)
    assert str(found.version) == ref.version
    assert "mlflow.modelVersions" not in MlflowClient().get_logged_model(info.model_id).tags


def test_rollback_without_champion(store):
    with pytest.raises(RecsysError, match="no champion"):
        registry.rollback("nothing-here", alias=RATING)


def test_stale_verdict_is_refused_and_leaves_the_champion(new_version):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    # v2 was judged while there was no champion; v1 was promoted meanwhile
    with pytest.raises(
        StalePromotionError, match="champion-rating of 'regtest' is version 1 now"
    ) as err:
        registry.promote(v2, {"why": "late"}, expected=None, alias=RATING)
    assert isinstance(err.value, GateRejectedError)
    assert (err.value.judged, err.value.current) == (None, "1")
    assert "Re-run the training" in str(err.value)
    assert registry.get_alias("regtest", RATING).version == "1"
    assert _statuses() == {"1": "champion", "2": "stale"}
    assert "why" not in _tags(v2)  # no evidence of a promotion that did not happen
    # judged against a version that is no longer champion: refused too
    v3 = new_version()
    registry.promote(v3, {}, expected="1", alias=RATING)
    v4 = new_version()
    with pytest.raises(StalePromotionError, match="version 3 now"):
        registry.promote(v4, {}, expected="1", alias=RATING)
    assert registry.get_alias("regtest", RATING).version == "3"


def test_a_version_cannot_replace_itself(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    with pytest.raises(RecsysError, match="cannot replace itself"):
        registry.promote(v1, {}, expected=v1.version, alias=RATING)


def test_retry_after_a_failed_tag_write_converges(new_version, monkeypatch):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    real = registry.tag_version
    failures = []

    def flaky(ref, tags):
        # the fault: the first tag write after the alias moved fails
        if tags.get("role.rating") == "replaced" and not failures:
            failures.append(registry.get_alias("regtest", RATING).version)
            raise ConnectionError("tracking server went away")
        return real(ref, tags)

    monkeypatch.setattr(registry, "tag_version", flaky)
    with pytest.raises(ConnectionError):
        registry.promote(v2, {"run_id": "r2"}, expected="1", alias=RATING)
    assert failures == ["2"]  # the alias had moved when the write failed
    assert _tags(v2)["role.rating"] == "promoting"
    # the retry (same arguments, as Prefect sends them) completes the same state
    previous = registry.promote(v2, {"run_id": "r2"}, expected="1", alias=RATING)
    assert previous.version == "1"
    assert registry.get_alias("regtest", RATING).version == "2"
    assert _tags(v2)["role.rating.previous"] == "1"  # never the version itself
    assert _statuses() == {"1": "replaced", "2": "champion"}
    # and once more: a retry of a promotion that fully succeeded changes nothing
    registry.promote(v2, {"run_id": "r2"}, expected="1", alias=RATING)
    assert _tags(v2)["role.rating.previous"] == "1"
    assert _statuses() == {"1": "replaced", "2": "champion"}
    old, new = registry.rollback("regtest", alias=RATING)
    assert (old.version, new.version) == ("2", "1")


def test_retry_after_a_failed_champion_tag_converges(new_version, monkeypatch):
    v1 = new_version()
    real = registry.tag_version

    def fail_once(ref, tags):
        if tags.get("role.rating") == "champion" and not getattr(fail_once, "done", False):
            fail_once.done = True
            raise ConnectionError("boom")
        return real(ref, tags)

    monkeypatch.setattr(registry, "tag_version", fail_once)
    with pytest.raises(ConnectionError):
        registry.promote(v1, {}, expected=None, alias=RATING)
    assert registry.get_alias("regtest", RATING).version == "1"
    assert registry.promote(v1, {}, expected=None, alias=RATING) is None
    assert _tags(v1)["role.rating.previous"] == "none"
    assert _statuses() == {"1": "champion"}


def test_rollback_rechecks_the_champion(new_version):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    registry.promote(v2, {}, expected="1", alias=RATING)
    with pytest.raises(StalePromotionError, match="is version 2 now, not 1"):
        registry.rollback("regtest", alias=RATING, expected="1")
    assert registry.get_alias("regtest", RATING).version == "2"
    registry.rollback("regtest", alias=RATING, expected="2")
    assert registry.get_alias("regtest", RATING).version == "1"


def test_rollback_refuses_a_self_reference(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    registry.tag_version(v1, {"role.rating.previous": "1"})  # as written by older versions
    with pytest.raises(RecsysError) as caught:
        registry.rollback("regtest", alias=RATING)
    assert str(caught.value) == (
        "champion-rating regtest/1 records itself as the version it "
        "replaced; set its role.rating.previous tag by hand"
    )
    assert registry.get_alias("regtest", RATING).version == "1"


def test_role_aliases_are_independent(new_version):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    registry.promote(v2, {}, expected=None, alias=RATING)
    assert registry.get_alias("regtest", "champion-ranking").version == "1"
    assert registry.get_alias("regtest", RATING).version == "2"
    # one version holds both roles, with one state per role
    registry.promote(v2, {}, expected="1", alias="champion-ranking")
    assert _tags(v2)["role.ranking"] == _tags(v2)["role.rating"] == "champion"
    assert _tags(v1)["role.ranking"] == "replaced" and "role.rating" not in _tags(v1)
    with pytest.raises(StalePromotionError):
        registry.promote(v1, {}, expected=None, alias="champion-ranking")
    assert _tags(v1)["role.ranking"] == "stale"  # judged against no champion


def test_concurrent_promotions_leave_one_champion(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    contenders = [new_version() for _ in range(4)]
    barrier = threading.Barrier(len(contenders))
    outcomes: dict[str, str] = {}

    def run(ref):
        barrier.wait()
        try:
            # every one judged against version 1
            registry.promote(ref, {}, expected="1", alias=RATING)
            outcomes[ref.version] = "promoted"
        except StalePromotionError:
            outcomes[ref.version] = "stale"
        except Exception as exc:  # shown by the assertion below
            outcomes[ref.version] = repr(exc)

    threads = [threading.Thread(target=run, args=(ref,)) for ref in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["promoted", "stale", "stale", "stale"]
    winner = next(v for v, o in outcomes.items() if o == "promoted")
    assert registry.get_alias("regtest", RATING).version == winner
    statuses = _statuses()
    assert [v for v, s in statuses.items() if s == "champion"] == [winner]
    assert statuses["1"] == "replaced"
    assert _tags(winner)["role.rating.previous"] == "1"
    assert registry.rollback("regtest", alias=RATING)[1].version == "1"
    # the lock is released: no lock model is left in the registry
    names = {m.name for m in MlflowClient().search_registered_models()}
    assert names == {"regtest"}


def test_unreachable_registry_is_an_error_not_no_champion(store, monkeypatch):
    from recsys_core.exceptions import TrackingError

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    mlflow.set_registry_uri("http://127.0.0.1:9")  # discard port: nothing answers
    with pytest.raises(TrackingError, match="cannot read the alias 'champion-rating'"):
        registry.get_alias("regtest", RATING)
