"""The promotion lock in the registry: exclusive, released, broken after its time to live."""

import threading
import time

import pytest
from mlflow import MlflowClient

from recsys_core.exceptions import ConfigError, TrackingError
from recsys_core.tracking.promotion_lock import (
    EXPIRES_TAG,
    HOLDER_TAG,
    lock_name,
    promotion_lock,
)


def _names():
    return {m.name for m in MlflowClient().search_registered_models()}


def test_holders_never_overlap(store):
    inside, overlaps, order, errors = [], [], [], []

    def hold(i):
        try:
            with promotion_lock("m", "champion"):
                if inside:
                    overlaps.append(i)
                inside.append(i)
                time.sleep(0.05)
                order.append(i)
                inside.remove(i)
        except Exception as exc:  # shown by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and overlaps == [] and sorted(order) == [0, 1, 2, 3]
    assert lock_name("m", "champion") not in _names()  # released


def test_released_when_the_body_fails(store):
    with pytest.raises(RuntimeError), promotion_lock("m", "champion"):
        assert lock_name("m", "champion") in _names()
        raise RuntimeError("boom")
    assert lock_name("m", "champion") not in _names()


def test_a_held_lock_times_out_with_a_message(store):
    lock = lock_name("m", "champion")
    MlflowClient().create_registered_model(
        lock, tags={HOLDER_TAG: "other-host:1:x", EXPIRES_TAG: str(time.time() + 60)}
    )
    with (
        pytest.raises(TrackingError, match="held by other-host:1:x") as err,
        promotion_lock("m", "champion", wait=0.3),
    ):
        pass
    assert f"delete the registered model {lock!r}" in str(err.value)
    assert lock in _names()  # a live lock is never broken


def test_an_expired_lock_is_broken(store):
    lock = lock_name("m", "champion")
    MlflowClient().create_registered_model(
        lock, tags={HOLDER_TAG: "dead-host:1:x", EXPIRES_TAG: str(time.time() - 1)}
    )
    with promotion_lock("m", "champion", wait=5) as holder:
        tags = MlflowClient().get_registered_model(lock).tags
        assert tags[HOLDER_TAG] == holder != "dead-host:1:x"
    assert _names() == set()  # neither the lock nor the renamed expired one is left


def test_settings_are_checked(store, monkeypatch):
    monkeypatch.setenv("RECSYS_PROMOTION_LOCK_TTL", "soon")
    with (
        pytest.raises(ConfigError, match="RECSYS_PROMOTION_LOCK_TTL='soon'"),
        promotion_lock("m", "champion"),
    ):
        pass
