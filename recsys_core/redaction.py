"""Credentials removed from text before it reaches a log line, a tag or an error message.

Endpoints and URLs travel into messages (``cannot reach S3 at http://...``), MLflow tags and
Prefect logs, where anyone who can read them would also read what they carry::

    >>> redact("cannot reach http://admin:s3cret@minio:9000/data")
    'cannot reach http://***@minio:9000/data'
    >>> redact("aws_secret_access_key=abc123 region=eu")
    'aws_secret_access_key=*** region=eu'

What is removed: the ``user:password@`` part of any URL, the value of ``key=value`` (or
``key: value``) pairs whose key names a secret (password, secret, token, credential,
signature, ...; presigned-URL query parameters included), and the values of the secret
environment variables set in this process (``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``MLFLOW_TRACKING_PASSWORD``, ...) wherever they appear.
"""

from __future__ import annotations

import os
import re

MASK = "***"

# scheme://userinfo@ : the userinfo is everything up to the last '@' before the host
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s@?#]+)@")

_SECRET_KEY = (
    r"(?:[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|credential|api[_\-]?key|"
    r"access[_\-]?key|signature|private[_\-]?key|auth[_\-]?string|authorization)[A-Za-z0-9_.\-]*)"
)
# key=value, key: value, "key": "value"; the value runs to a separator or a closing quote
_PAIR = re.compile(
    rf"(?P<key>{_SECRET_KEY})(?P<q1>[\"']?)(?P<sep>\s*[=:]\s*)(?P<q2>[\"']?)"
    r"(?P<value>[^\s&;,\"'}\]]+)",
    re.IGNORECASE,
)

#: Environment variables whose values are secrets; any occurrence of their value is masked.
SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MINIO_ROOT_PASSWORD",
    "MINIO_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_SERVER_API_AUTH_STRING",
)
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``***`` (see the module docstring for what)."""
    if not text:
        return text
    text = str(text)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= _MIN_SECRET_LEN:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _PAIR.sub(_mask_pair, text)


def _mask_pair(m: re.Match) -> str:
    if m["value"] == MASK:
        return m[0]
    return f"{m['key']}{m['q1']}{m['sep']}{m['q2']}{MASK}"
