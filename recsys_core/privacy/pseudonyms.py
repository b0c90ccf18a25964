"""The pseudonyms under their former name: they live in :mod:`recsys_core.pseudonyms`, a leaf that
the data packages may import (collection pseudonymizes the ids it reads) without importing the
privacy package, which stands above them (forgetting reads and rewrites snapshots)."""

from recsys_core.pseudonyms import (
    KEY_ENV,
    MIN_KEY_BYTES,
    PSEUDONYMIZED_TAG,
    pseudonymize,
    pseudonymize_users,
    read_key,
)

__all__ = [
    "KEY_ENV",
    "MIN_KEY_BYTES",
    "PSEUDONYMIZED_TAG",
    "pseudonymize",
    "pseudonymize_users",
    "read_key",
]
