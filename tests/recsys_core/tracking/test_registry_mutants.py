"""Registry details that the scenario tests leave open (found by `make mutation`): rollback of a
role alias, the tags it writes, the stale error's fields, what register returns, JSON tags."""

import datetime
import json
import logging
import time
from types import ModuleType

import pytest
from mlflow import MlflowClient

from recsys_core.exceptions import ConfigError, RecsysError, StalePromotionError, TrackingError
from recsys_core.tracking import registry
from recsys_core.tracking.promotion_lock import promotion_lock

RATING = registry.ROLE_ALIASES[registry.RATING]


def _tags(version: str, name: str = "regtest") -> dict[str, str]:
    return dict(MlflowClient().get_model_version(name, version).tags)


def test_rollback_of_a_role_alias_leaves_the_champion(new_version):
    v1, v2, v3 = new_version(), new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    registry.promote(v2, {}, expected="1", alias="champion-ranking")
    registry.promote(v3, {}, expected=None, alias=RATING)
    old, new = registry.rollback("regtest", alias="champion-ranking")
    assert (old.version, new.version) == ("2", "1")
    assert registry.get_alias("regtest", "champion-ranking").version == "1"
    assert registry.get_alias("regtest", RATING).version == "3"
    tags = _tags("2")
    assert tags["role.ranking"] == "rolled_back"
    assert tags["role.ranking.rolled_back_at"].endswith("Z")
    assert _tags("1")["role.ranking"] == "champion"
    assert _tags("3")["role.rating"] == "champion" and "role.ranking" not in _tags("3")


def test_stale_rollback_names_both_versions(new_version):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    registry.promote(v2, {}, expected="1", alias=RATING)
    with pytest.raises(StalePromotionError) as caught:
        registry.rollback("regtest", alias=RATING, expected="1")
    assert (caught.value.judged, caught.value.current) == ("1", "2")
    assert str(caught.value) == (
        "champion-rating of 'regtest' is version 2 now, not 1: nothing rolled back; check the "
        "registry and roll back again if needed"
    )


def test_register_returns_the_run_and_tags_hold_json(new_version):
    v1 = new_version()
    assert v1.run_id and MlflowClient().get_model_version("regtest", v1.version).run_id == v1.run_id
    registry.tag_version(v1, {"gate": {"rmse": 0.5, "passed": True}, "note": "plain text"})
    tags = _tags(v1.version)
    assert json.loads(tags["gate"]) == {"rmse": 0.5, "passed": True}
    assert tags["note"] == "plain text"


def test_alias_of_each_role_and_an_unknown_role():
    assert [registry.alias_of(r) for r in registry.ROLES] == ["champion-ranking", "champion-rating"]
    with pytest.raises(ConfigError) as caught:
        registry.alias_of("serving")
    assert str(caught.value) == "unknown role 'serving'; use one of ranking, rating"


def test_promote_and_rollback_wait_for_the_lock_of_their_alias(new_version, monkeypatch):
    v1, v2, v3 = new_version(), new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    registry.promote(v2, {}, expected="1", alias=RATING)
    monkeypatch.setenv("RECSYS_PROMOTION_LOCK_WAIT", "0.5")
    held = "promotion lock 'regtest.champion-rating.promotion-lock' has been held"
    with promotion_lock("regtest", RATING):
        with pytest.raises(TrackingError, match=held):
            registry.rollback("regtest", alias=RATING)
        with pytest.raises(TrackingError, match=held):
            registry.promote(v3, {}, expected="2", alias=RATING)
    assert registry.get_alias("regtest", RATING).version == "2"
    # the lock of another alias does not stand in the way
    with promotion_lock("regtest", "champion-ranking"):
        registry.rollback("regtest", alias=RATING)
    assert registry.get_alias("regtest", RATING).version == "1"


def test_rollback_of_a_champion_aliased_by_hand_has_nothing_to_go_back_to(new_version):
    v1 = new_version()
    MlflowClient().set_registered_model_alias("regtest", RATING, v1.version)  # no role tags
    with pytest.raises(RecsysError, match="replaced no earlier version; nothing to roll back to"):
        registry.rollback("regtest", alias=RATING)
    registry.tag_version(v1, {"role.rating.previous": ""})  # an empty tag says the same
    with pytest.raises(RecsysError, match="replaced no earlier version; nothing to roll back to"):
        registry.rollback("regtest", alias=RATING)
    assert registry.get_alias("regtest", RATING).version == "1"


def test_a_stale_version_records_when_and_why_in_utc(new_version, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")  # the time is UTC whatever the local zone
    time.tzset()
    try:
        v1, v2 = new_version(), new_version()
        registry.promote(v1, {}, expected=None, alias=RATING)
        with pytest.raises(StalePromotionError) as caught:
            registry.promote(v2, {}, expected=None, alias=RATING)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    tags = _tags("2")
    reason = tags["role.rating.stale_reason"]
    assert reason == "judged against no champion, champion-rating is 1 now"
    stale_at = datetime.datetime.strptime(tags["role.rating.stale_at"], "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - stale_at).total_seconds()) < 600
    assert str(caught.value) == (
        "champion-rating of 'regtest' is version 1 now, but the gate judged version 2 against no "
        "champion: not promoted. Re-run the training to judge it against version 1."
    )


def test_a_retried_promotion_says_it_completes_the_tags(new_version, caplog):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    with caplog.at_level(logging.INFO, logger=registry.__name__):
        registry.promote(v1, {}, expected=None, alias=RATING)
    said = "regtest version 1 already holds 'champion-rating'; completing its tags"
    assert said in caplog.messages


def test_rollback_to_a_deleted_version_changes_nothing(new_version):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    registry.promote(v2, {}, expected="1", alias=RATING)
    MlflowClient().delete_model_version("regtest", "1")
    with pytest.raises(RecsysError, match="replaced version 1, which no longer exists"):
        registry.rollback("regtest", alias=RATING)
    assert registry.get_alias("regtest", RATING).version == "2"


def test_a_verdict_against_a_champion_whose_alias_was_removed_is_stale(new_version):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    MlflowClient().delete_registered_model_alias("regtest", RATING)
    with pytest.raises(StalePromotionError) as caught:
        registry.promote(v2, {}, expected="1", alias=RATING)
    assert (caught.value.judged, caught.value.current) == ("1", None)
    assert str(caught.value) == (
        "champion-rating of 'regtest' is version none now, but the gate judged version 2 against "
        "1: not promoted. Re-run the training to judge it against no champion."
    )
    reason = _tags("2")["role.rating.stale_reason"]
    assert reason == "judged against 1, champion-rating is unset now"
    assert registry.get_alias("regtest", RATING) is None


def _cut_after_the_alias_moved(monkeypatch, alias: str) -> list[str]:
    """Make the first tag write after ``alias`` moved fail, as a tracking server that goes away
    would; returns the versions the alias was on when it failed."""
    real, cut = registry.tag_version, []

    def flaky(ref, tags):
        if tags.get(registry.role_tag(alias)) in ("replaced", "champion") and not cut:
            cut.append(registry.get_alias(ref.name, alias).version)
            raise ConnectionError("tracking server went away")
        return real(ref, tags)

    monkeypatch.setattr(registry, "tag_version", flaky)
    return cut


def _utc(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def test_a_promotion_cut_off_after_the_alias_moved_can_be_rolled_back(new_version, monkeypatch):
    v1, v2 = new_version(), new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    cut = _cut_after_the_alias_moved(monkeypatch, RATING)
    with pytest.raises(ConnectionError):
        registry.promote(v2, {"why": "better"}, expected="1", alias=RATING)
    monkeypatch.undo()
    assert cut == ["2"]
    # the evidence written before the alias moved: what rollback and an audit read
    tags = _tags("2")
    assert (tags["role.rating"], tags["role.rating.previous"], tags["why"]) == (
        "promoting",
        "1",
        "better",
    )
    promoted_at = _utc(tags["role.rating.promoted_at"])
    assert abs((datetime.datetime.now(datetime.UTC) - promoted_at).total_seconds()) < 600
    old, new = registry.rollback("regtest", alias=RATING)
    assert (old.version, new.version) == ("2", "1")
    assert registry.get_alias("regtest", RATING).version == "1"


def test_a_first_promotion_cut_off_after_the_alias_moved_has_nothing_to_go_back_to(
    new_version, monkeypatch
):
    v1 = new_version()
    _cut_after_the_alias_moved(monkeypatch, "champion-ranking")
    with pytest.raises(ConnectionError):
        registry.promote(v1, {}, expected=None, alias="champion-ranking")
    monkeypatch.undo()
    tags = _tags("1")
    assert (tags["role.ranking"], tags["role.ranking.previous"]) == ("promoting", "none")
    assert _utc(tags["role.ranking.promoted_at"]) <= datetime.datetime.now(datetime.UTC)
    with pytest.raises(RecsysError) as caught:
        registry.rollback("regtest", alias="champion-ranking")
    assert str(caught.value) == (
        "champion-ranking regtest/1 replaced no earlier version; nothing to roll back to"
    )
    assert registry.get_alias("regtest", "champion-ranking").version == "1"


def test_register_keeps_the_source_the_tags_and_the_description(store, tiny_model_dir):
    from recsys_core.tracking import mlflow_run

    run_id = mlflow_run.start_run("reg-test", "r")
    mlflow_run.log_artifacts(run_id, tiny_model_dir, "model_state")
    uri = f"runs:/{run_id}/model_state"
    ref = registry.register("described", uri, run_id, {"status": "candidate", "n": 3})
    mv = MlflowClient().get_model_version("described", ref.version)
    assert mv.source == uri and mv.run_id == run_id
    assert dict(mv.tags) == {"status": "candidate", "n": "3"}
    description = MlflowClient().get_registered_model("described").description
    assert description == (
        "recsys recommender (aliases: champion-ranking, champion-rating, challenger)"
    )
    registry.ensure_registered_model("described")  # already there: nothing changes
    assert MlflowClient().get_registered_model("described").description == description


def test_an_alias_that_is_not_a_role_stands_for_itself():
    assert registry.role_of("champion-rating") == "rating"
    assert registry.role_of("challenger") == "challenger"
    assert registry.role_tag("challenger", "previous") == "role.challenger.previous"


def test_tag_version_writes_values_that_json_cannot_as_text(new_version):
    v1 = new_version()
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    registry.tag_version(v1, {"at": {"when": when}})
    assert json.loads(_tags(v1.version)["at"]) == {"when": "2026-01-02 03:04:05"}


def _statuses_then_real(monkeypatch, statuses: list[str]) -> list[str]:
    """The registry's client answers ``statuses`` first (a server still copying the files),
    then the real status; the states seen are returned."""
    client = MlflowClient()
    real = client.get_model_version
    seen: list[str] = []

    def get(name, version):
        mv = real(name, version)
        if statuses:
            mv._status = statuses.pop(0)
        seen.append(mv.status)
        return mv

    client.get_model_version = get
    monkeypatch.setattr(registry, "_client", lambda: client)
    # the registry's own clock only: patching ``time.sleep`` itself would also turn the sleeps
    # of other threads (py4j's finalizer once a Spark test ran) into a busy loop filling ``seen``
    own_time = ModuleType("time")
    own_time.__dict__.update(vars(time))
    own_time.sleep = lambda s: seen.append(f"sleep {s}")  # type: ignore[attr-defined]
    monkeypatch.setattr(registry, "time", own_time)
    return seen


def test_register_waits_while_the_version_is_pending(store, tiny_model_dir, monkeypatch):
    from recsys_core.tracking import mlflow_run

    run_id = mlflow_run.start_run("reg-test", "r")
    seen = _statuses_then_real(monkeypatch, ["PENDING_REGISTRATION", "PENDING_REGISTRATION"])
    registry.register("pending", f"runs:/{run_id}/x", run_id, {})
    assert seen == [
        "PENDING_REGISTRATION",
        "sleep 0.5",
        "PENDING_REGISTRATION",
        "sleep 0.5",
        "READY",
    ]


def test_a_failed_registration_is_not_usable(store, monkeypatch):
    from recsys_core.tracking import mlflow_run

    run_id = mlflow_run.start_run("reg-test", "r")
    _statuses_then_real(monkeypatch, ["FAILED_REGISTRATION"])
    with pytest.raises(
        TrackingError, match=r"^model version failing/1 is FAILED_REGISTRATION; not usable$"
    ):
        registry.register("failing", f"runs:/{run_id}/x", run_id, {})
    assert registry.get_alias("failing", registry.CHALLENGER) is None


def test_a_version_pending_past_the_timeout_is_not_usable(store, monkeypatch):
    from recsys_core.tracking import mlflow_run

    run_id = mlflow_run.start_run("reg-test", "r")
    registry.ensure_registered_model("slow")
    mv = MlflowClient().create_model_version("slow", f"runs:/{run_id}/x", run_id=run_id)
    _statuses_then_real(monkeypatch, ["PENDING_REGISTRATION"] * 3)
    with pytest.raises(TrackingError, match="is PENDING_REGISTRATION; not usable"):
        registry._wait_ready("slow", mv.version, timeout=0.0)
    started = time.monotonic()
    registry._wait_ready("slow", mv.version, timeout=60.0)  # pending, then ready: returns
    assert time.monotonic() - started < 5
