"""redact: credentials never reach a message, a tag or a log line; ordinary text is untouched."""

import pytest

from recsys_core.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cannot reach http://admin:s3cret@minio:9000/data",
         "cannot reach http://***@minio:9000/data"),
        ("postgresql+psycopg2://mlflow:pw%40x@db:5432/mlflow",
         "postgresql+psycopg2://***@db:5432/mlflow"),
        ("s3 at https://token@host/x and http://u:p@h2", "s3 at https://***@host/x and http://***@h2"),
        ("aws_secret_access_key=abc123 region=eu", "aws_secret_access_key=*** region=eu"),
        ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY: ***"),
        ("db password=hunter2; port=5432", "db password=***; port=5432"),
        ('{"password": "hunter2", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("https://b.s3/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=dead&x=1",
         "https://b.s3/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1"),
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
