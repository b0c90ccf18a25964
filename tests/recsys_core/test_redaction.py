"""redact: credentials never reach a message, a tag or a log line; ordinary text is untouched."""

import pytest

from recsys_core.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot reach http://admin:s3cret@minio:9000/data",
            "cannot reach http://***@minio:9000/data",
        ),
        (
            "postgresql+psycopg2://mlflow:pw%40x@db:5432/mlflow",
            "postgresql+psycopg2://***@db:5432/mlflow",
        ),
        (
            "s3 at https://token@host/x and http://u:p@h2",
            "s3 at https://***@host/x and http://***@h2",
        ),
        ("aws_secret_access_key=abc123 region=eu", "aws_secret_access_key=*** region=eu"),
        ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY: ***"),
        ("db password=hunter2; port=5432", "db password=***; port=5432"),
        ('{"password": "hunter2", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        (
            "https://b.s3/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=dead&x=1",
            "https://b.s3/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        ("PREFECT_SERVER_API_AUTH_STRING=admin:pass", "PREFECT_SERVER_API_AUTH_STRING=***"),
    ],
)
def test_redact_removes_credentials(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "file not found: 'data/ratings.csv'",
        "cannot reach S3 at http://127.0.0.1:9000 to read s3://data/r.csv: timed out",
        "column 'rating' must be numeric; e.g. row 3: 'abc'",
        "user@example.com rated item 5",
        "",
    ],
)
def test_redact_keeps_ordinary_text(text):
    assert redact(text) == text


def test_redact_masks_secret_environment_values_anywhere(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "Zx9-very-secret")
    assert redact("signed with Zx9-very-secret (ok)") == "signed with *** (ok)"
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ab")  # too short to mask safely
    assert redact("ab cd") == "ab cd"


# -- secrets with any characters (property-based) -------------------------------------------

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# what a password may hold in a URL written out: any printable character but blanks
_PASSWORD = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=40)
_USER = st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1, max_size=12)
_TOKEN = st.text(st.sampled_from("ABCDEFabcdef0123456789-._~+/"), min_size=8, max_size=60)


@settings(max_examples=300, deadline=None)
@given(user=_USER, password=_PASSWORD)
def test_a_password_in_a_url_is_masked_whatever_it_holds(user, password):
    message = f"cannot reach postgresql://{user}:{password}@db.internal:5432/events: refused"
    assume(password not in message.replace(f"{user}:{password}@", ""))
    out = redact(message)
    assert password not in out, out
    assert out.startswith("cannot reach postgresql://***@")


@pytest.mark.parametrize("password", ["p@ss", "a/b#c:d@e", "#start", "with:colon/and@at"])
def test_passwords_with_at_slash_hash_and_colon(password):
    out = redact(f"cannot reach postgresql://u:{password}@db:5432/events")
    assert out == "cannot reach postgresql://***@db:5432/events"


@settings(max_examples=200, deadline=None)
@given(token=_TOKEN)
def test_bearer_and_basic_credentials_are_masked(token):
    for message in (
        f"Authorization: Bearer {token}",
        f"sent Bearer {token} to the API",
        f'{{"authorization": "Bearer {token}"}}',
        f"Authorization: Basic {token}",
    ):
        out = redact(message)
        assert token not in out, out
        assert "***" in out


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=4, max_size=40),
    name=st.sampled_from(
        [
            "PGPASSWORD",
            "RECSYS_PSEUDONYM_KEY",
            "S3_WORKER_SECRET_KEY",
            "RECSYS_API_KEY",
            "EVENTS_SERVICE_PASSWORD",
            "MY_SERVICE_TOKEN",
        ]
    ),
)
def test_the_values_of_secret_settings_are_masked_anywhere(monkeypatch, value, name):
    with monkeypatch.context() as mp:
        mp.setenv(name, value)
        out = redact(f"the key was {value}, then again ({value})")
    assert value not in out and out.count("***") >= 2
