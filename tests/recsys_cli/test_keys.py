"""``recsys keys``: create prints the key once (and only the key on stdout), list shows no
secret, revoke ends it; bad names, scopes and repeats exit 2 with a message."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.events.keys import KeyStore
from recsys_core.events.migrate import upgrade


@pytest.fixture
def url(tmp_path, monkeypatch):
    monkeypatch.delenv("RECSYS_KEYS_PEPPER", raising=False)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    upgrade(url)
    return url


def _run(*args):
    return CliRunner().invoke(app, list(args))


def test_create_prints_the_key_once_and_list_never_shows_it(url, tmp_path):
    r = _run("keys", "create", "--name", "batch-flow", "--scopes", "ingest,recommend", "--url", url)
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    assert secret.startswith("rsk_") and "\n" not in secret  # alone on stdout
    assert "shown only now" in r.stderr
    assert KeyStore(url).verify(secret).scopes == {"ingest", "recommend"}
    listed = _run("keys", "list", "--url", url)
    assert listed.exit_code == 0 and "batch-flow" in listed.output
    assert "ingest,recommend" in listed.output and "active" in listed.output
    as_json = json.loads(_run("keys", "list", "--json", "--url", url).stdout)
    assert as_json[0]["name"] == "batch-flow" and as_json[0]["revoked"] is None
    for text in (listed.output, json.dumps(as_json)):
        assert secret not in text and secret[4:16] not in text
    assert secret.encode() not in (tmp_path / "events.db").read_bytes()
    r = _run("keys", "revoke", "batch-flow", "--url", url)
    assert r.exit_code == 0 and "revoked" in r.output
    assert KeyStore(url).verify(secret) is None
    assert "revoked" in _run("keys", "list", "--url", url).output


@pytest.mark.parametrize(
    "args, message",
    [
        (["create", "--name", "a b", "--scopes", "recommend"], "invalid key name 'a b'"),
        (["create", "--name", "x", "--scopes", "recommend,everything"], "unknown: 'everything'"),
        (["revoke", "nobody"], "no key named 'nobody'"),
    ],
)
def test_bad_names_and_scopes_exit_2_with_a_message(url, args, message):
    r = _run("keys", *args, "--url", url)
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_a_name_is_taken_once(url):
    assert _run("keys", "create", "--name", "ops", "--scopes", "admin", "--url", url).exit_code == 0
    r = _run("keys", "create", "--name", "ops", "--scopes", "admin", "--url", url)
    assert r.exit_code == 2 and "exists already" in r.output


def test_a_store_never_migrated_says_how_to_fix_it(tmp_path):
    r = _run("keys", "list", "--url", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert r.exit_code != 0 and "recsys db upgrade" in r.output


def test_a_key_handed_over_through_the_environment_is_registered_once(url, monkeypatch):
    secret = "rsk_" + "0123456789abcdef" * 3
    monkeypatch.setenv("RECSYS_SERVE_API_KEY", secret)
    args = [
        "keys",
        "create",
        "--name",
        "clients",
        "--scopes",
        "recommend,ingest",
        "--url",
        url,
        "--from-env",
        "RECSYS_SERVE_API_KEY",
    ]
    for _ in range(2):  # at every `docker compose up`: the second run changes nothing
        r = _run(*args)
        assert r.exit_code == 0, r.output
        assert secret not in r.output
    assert KeyStore(url).verify(secret).name == "clients"
    monkeypatch.setenv("RECSYS_SERVE_API_KEY", "rsk_" + "f" * 40)
    r = _run(*args)
    assert r.exit_code == 2 and "exists already with another key" in r.output
    monkeypatch.setenv("RECSYS_SERVE_API_KEY", "change-me")
    r = _run(
        "keys",
        "create",
        "--name",
        "other",
        "--scopes",
        "admin",
        "--url",
        url,
        "--from-env",
        "RECSYS_SERVE_API_KEY",
    )
    assert r.exit_code == 2 and "is not a key" in r.output
