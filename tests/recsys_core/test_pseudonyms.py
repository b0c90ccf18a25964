"""Pseudonyms: keyed, stable, unreadable without the key; the key read from the environment."""

import hashlib
import hmac

import pandas as pd
import pytest

from recsys_core.data import collect
from recsys_core.exceptions import ConfigError
from recsys_core.pseudonyms import KEY_ENV, pseudonymize, pseudonymize_users, read_key

KEY = b"k" * 32


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    """No key in the environment, and a working directory without .env."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_same_id_and_key_give_the_same_pseudonym_another_key_another():
    first = pseudonymize("42", KEY)
    assert first == pseudonymize("42", KEY)
    assert first == hmac.new(KEY, b"42", hashlib.sha256).hexdigest()
    assert len(first) == 64 and "42" not in first
    assert pseudonymize("42", b"q" * 32) != first
    assert pseudonymize("43", KEY) != first


def test_the_key_comes_from_the_environment_or_dotenv(no_key, monkeypatch):
    (no_key / ".env").write_text(f"{KEY_ENV}={'d' * 20}\n")
    assert read_key() == b"d" * 20
    assert pseudonymize("7") == pseudonymize("7", b"d" * 20)
    monkeypatch.setenv(KEY_ENV, "e" * 24)  # the environment wins over .env
    assert read_key() == b"e" * 24


def test_a_missing_or_short_key_is_refused_with_how_to_set_it(no_key, monkeypatch):
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is not set; set {KEY_ENV}"):
        read_key()
    with pytest.raises(ConfigError, match=KEY_ENV):
        pseudonymize("42")
    monkeypatch.setenv(KEY_ENV, "short-secret")
    with pytest.raises(ConfigError) as info:
        read_key()
    assert "12 bytes long; at least 16" in str(info.value)
    assert "short-secret" not in str(info.value)  # a key is never shown


def test_a_table_keeps_its_rows_and_loses_its_raw_ids():
    frame = pd.DataFrame(
        {
            "user": ["1", "2", "1", None],
            "item": ["a", "b", "c", "d"],
            "rating": [1.0, 2.0, 3.0, 4.0],
        }
    )
    out = pseudonymize_users(frame, KEY)
    assert list(out["user"][:3]) == [
        pseudonymize("1", KEY),
        pseudonymize("2", KEY),
        pseudonymize("1", KEY),
    ]
    assert pd.isna(out["user"][3])  # a missing id stays missing, for validation to report
    assert list(out["item"]) == list(frame["item"]) and frame["user"][0] == "1"


def test_collection_with_a_key_writes_no_raw_user_id(tmp_path):
    frame = pd.DataFrame(
        {
            "userId": ["alice", "bob", "alice"],
            "movieId": ["1", "2", "2"],
            "rating": [4.0, 3.0, 5.0],
            "timestamp": [1, 2, 3],
        }
    )
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    collected = collect(str(tmp_path / "ratings.csv"), pseudonym_key=KEY)
    users = set(collected.interactions["user"])
    assert users == {pseudonymize("alice", KEY), pseudonymize("bob", KEY)}
    assert collected.extra["pseudonymized"] is True
    plain = collect(str(tmp_path / "ratings.csv"))
    assert set(plain.interactions["user"]) == {"alice", "bob"}
    assert plain.extra["pseudonymized"] is False
