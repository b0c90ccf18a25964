"""Pseudonymous user ids: HMAC-SHA256 of the raw id under a secret key (hex, 64 characters).

::

    key = read_key()                      # RECSYS_PSEUDONYM_KEY from the environment or .env
    pseudonymize("42", key)               # the same id and key always give the same pseudonym
    pseudonymize_users(frame, key)        # a copy of an interaction table with pseudonyms

With ``data.pseudonymize_users`` the collection replaces every user id before the snapshot is
written, so snapshots, features, factors and artifacts never hold a raw id; the service maps
incoming ids the same way for a version tagged ``recsys.pseudonymized=true``. A keyed hash, unlike
a plain one, cannot be reversed by hashing every plausible id without the key.

The key is never logged and never leaves the process. Rotating it re-keys everything: snapshots
taken under the old key no longer match the users, and a model trained under it answers every
user as new until it is retrained on data collected under the new key.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd

from recsys_core.exceptions import ConfigError
from recsys_core.settings import get_settings

KEY_ENV = "RECSYS_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
"""Shortest key accepted: HMAC-SHA256 keys much shorter than its output can be guessed."""
PSEUDONYMIZED_TAG = "recsys.pseudonymized"
"""The version tag that says the model's user ids are pseudonyms."""


def read_key() -> bytes:
    """The key from ``RECSYS_PSEUDONYM_KEY`` (the environment, else ``.env``).

    Raises
    ------
    ConfigError
        The key is unset or shorter than ``MIN_KEY_BYTES`` bytes.
    """
    secret = get_settings().privacy.pseudonym_key
    value = secret.get_secret_value() if secret is not None else ""
    how = (
        f"set {KEY_ENV} in the environment or in .env to a long random secret, e.g. "
        f"{KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))'), and keep it: "
        "another key gives other pseudonyms"
    )
    if not value:
        raise ConfigError(f"pseudonymous user ids need a key, and {KEY_ENV} is not set; {how}")
    key = value.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{KEY_ENV} is {len(key)} bytes long; at least {MIN_KEY_BYTES} are needed; {how}"
        )
    return key


def pseudonymize(user_id: str, key: bytes | None = None) -> str:
    """The pseudonym of ``user_id``: HMAC-SHA256 under ``key`` (default: :func:`read_key`)."""
    key = read_key() if key is None else key
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()


def pseudonymize_users(frame: pd.DataFrame, key: bytes, column: str = "user") -> pd.DataFrame:
    """A copy of ``frame`` with ``column`` replaced by pseudonyms (one HMAC per distinct id)."""
    codes, uniques = pd.factorize(frame[column])
    mapped = np.array([pseudonymize(u, key) for u in uniques.astype(str)] + [None], dtype=object)
    out = frame.copy()
    # factorize codes a missing id -1, the last entry: it stays missing (validation reports it)
    out[column] = mapped[codes]
    return out
