"""Credentials removed from text before it reaches a log line, a tag or an error message.

Endpoints and URLs travel into messages (``cannot reach S3 at http://...``), MLflow tags and
Prefect logs, where anyone who can read them would also read what they carry::

    >>> redact("cannot reach http://admin:s3cret@minio:9000/data")
    'cannot reach http://***@minio:9000/data'
    >>> redact("aws_secret_access_key=abc123 region=eu")
    'aws_secret_access_key=*** region=eu'

What is removed:

- the ``user:password@`` part of any URL, whatever the password holds (``@``, ``/``, ``#``,
  ``:``): everything from the scheme to the last ``@`` of the URL's run of text;
- ``Bearer`` tokens and ``Basic`` credentials (``Authorization: Bearer ...``);
- the value of ``key=value`` (or ``key: value``) pairs whose key names a secret (password,
  secret, token, credential, signature, authorization, ...; presigned-URL query parameters
  included);
- the values of the secret variables of this process wherever they appear: those named in
  :data:`SECRET_ENV` (``PGPASSWORD``, ``RECSYS_PSEUDONYM_KEY``, the S3 secret keys, ...) and any
  variable whose name says it holds a secret (``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``,
  ``*API_KEY*``, ...), from the environment or the working folder's ``.env``.
"""

from __future__ import annotations

import os
import re

MASK = "***"

# scheme://userinfo@ : a password may hold '@', '/', '#' or ':', so the userinfo runs to the
# last '@' of the URL's run of non-blank text (a URL with an '@' in its path loses its host in
# the message: masking too much is the safe side)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>\S*)@")
# Bearer tokens anywhere; Basic credentials when they look like base64 (not the English word)
_BEARER = re.compile(r"\b(?P<kind>Bearer)\s+(?P<value>[^\s\"',;]+)", re.IGNORECASE)
_BASIC = re.compile(r"\b(?P<kind>Basic)\s+(?P<value>(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]+=*)")

_SECRET_KEY = (
    r"(?:[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|credential|api[_\-]?key|"
    r"access[_\-]?key|signature|private[_\-]?key|auth[_\-]?string|authorization)[A-Za-z0-9_.\-]*)"
)
# key=value, key: value, "key": "value"; the value runs to a separator or a closing quote
_PAIR = re.compile(
    rf"(?P<key>{_SECRET_KEY})(?P<q1>[\"']?)(?P<sep>\s*[=:]\s*)(?P<q2>[\"']?)"
    r"(?P<value>(?:(?:Bearer|Basic)\s+)?[^\s&;,\"'}\]]+)",
    re.IGNORECASE,
)

#: Environment variables whose values are secrets; any occurrence of their value is masked.
SECRET_ENV = (
    "PGPASSWORD",
    "RECSYS_PSEUDONYM_KEY",
    "RECSYS_API_KEY",
    "S3_MLFLOW_SECRET_KEY",
    "S3_WORKER_SECRET_KEY",
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
# a variable named like this holds a secret (the names of compose's .env and the settings)
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|PSEUDONYM_KEY|API_KEY|AUTH_STRING|"
    r"PRIVATE_KEY|CREDENTIAL",
    re.IGNORECASE,
)
_dotenv_cache: dict[str, tuple[float, list[str]]] = {}


def _secret_values() -> list[str]:
    values = [v for k, v in os.environ.items() if k in SECRET_ENV or _SECRET_NAME.search(k)]
    values += _dotenv_secrets(".env")
    # longest first: a secret that contains another is masked whole
    return sorted({v for v in values if v and len(v) >= _MIN_SECRET_LEN}, key=len, reverse=True)


def _dotenv_secrets(path: str) -> list[str]:
    """Secret values of a ``.env`` file (read again only when it changes): settings read it
    as well as the environment."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return []
    cached = _dotenv_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        from dotenv import dotenv_values

        found = [
            v
            for k, v in dotenv_values(path).items()
            if v and (k in SECRET_ENV or _SECRET_NAME.search(k))
        ]
    except Exception:
        found = []
    _dotenv_cache[path] = (mtime, found)
    return found


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``***`` (see the module docstring for what)."""
    if not text:
        return text
    text = str(text)
    for value in _secret_values():
        text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _BEARER.sub(_mask_token, text)
    text = _BASIC.sub(_mask_token, text)
    return _PAIR.sub(_mask_pair, text)


def _mask_token(m: re.Match) -> str:
    return f"{m['kind']} {MASK}"


def _mask_pair(m: re.Match) -> str:
    if m["value"] == MASK or m["value"].endswith(f" {MASK}"):
        return m[0]
    return f"{m['key']}{m['q1']}{m['sep']}{m['q2']}{MASK}"
