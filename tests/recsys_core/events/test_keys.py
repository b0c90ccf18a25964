"""API keys in the event store's database: stored as a keyed hash only, verified, revoked;
names and scopes refused with a message; the pepper made once beside an embedded store."""

from __future__ import annotations

import threading

import pytest

from recsys_core.events.keys import PEPPER_FILE, KeyStore, pepper
from recsys_core.events.migrate import upgrade
from recsys_core.exceptions import ConfigError


@pytest.fixture
def keys(store_url, monkeypatch):
    monkeypatch.setenv("RECSYS_KEYS_PEPPER", "pepper-of-the-tests-0123456789")
    upgrade(store_url)
    ks = KeyStore(store_url)
    yield ks
    ks.close()


def test_a_key_is_stored_hashed_verified_and_revoked(keys):
    secret = keys.create("batch-flow", "ingest, recommend")
    assert secret.startswith("rsk_") and len(secret) > 40
    key = keys.verify(secret)
    assert key is not None and key.name == "batch-flow"
    assert key.scopes == {"ingest", "recommend"}
    assert keys.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert keys.verify("not-a-key") is None
    with keys.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT * FROM api_keys").all()
    assert secret not in repr(stored) and secret[4:20] not in repr(stored)
    listed = keys.list()
    assert [k.name for k in listed] == ["batch-flow"] and listed[0].active
    assert keys.revoke("batch-flow").revoked_at is not None
    assert keys.verify(secret) is None
    assert keys.revoke("batch-flow").revoked_at is not None  # idempotent


def test_names_scopes_and_repeats_are_refused_with_a_message(keys):
    with pytest.raises(ConfigError, match=r"invalid key name 'a b'"):
        keys.create("a b", "recommend")
    with pytest.raises(ConfigError, match=r"unknown: 'root'.*choose among recommend, ingest"):
        keys.create("ops", "recommend,root")
    with pytest.raises(ConfigError, match="none given"):
        keys.create("ops", " , ")
    keys.create("ops", "admin")
    keys.revoke("ops")
    with pytest.raises(ConfigError, match="a key named 'ops' exists already"):
        keys.create("ops", "admin")  # a revoked name stays taken: it names its events
    with pytest.raises(ConfigError, match=r"no key named 'nobody'; the keys are: ops"):
        keys.revoke("nobody")
    assert [k.name for k in keys.list()] == ["ops"]


def test_another_pepper_verifies_no_key(keys, store_url, monkeypatch):
    secret = keys.create("svc", "recommend")
    monkeypatch.setenv("RECSYS_KEYS_PEPPER", "another-pepper-0123456789")
    other = KeyStore(store_url)
    try:
        assert other.verify(secret) is None
    finally:
        other.close()


def test_the_pepper_of_an_embedded_store_is_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv("RECSYS_KEYS_PEPPER", raising=False)
    url = f"sqlite:///{tmp_path / 'store' / 'events.db'}"
    got: list[bytes] = []
    threads = [threading.Thread(target=lambda: got.append(pepper(url))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got[0]) == 64
    path = tmp_path / "store" / PEPPER_FILE
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    with pytest.raises(ConfigError, match="set RECSYS_KEYS_PEPPER"):
        pepper("postgresql://recsys@127.0.0.1:5432/recsys_events")
    monkeypatch.setenv("RECSYS_KEYS_PEPPER", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        pepper(url)
