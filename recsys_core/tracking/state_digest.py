"""The digest of a saved model state, recorded on the version at registration and checked before
a version is served.

``state_digest(folder)`` is SHA-256 over the folder's files in sorted order of their relative
paths (POSIX), each contributing its path, a NUL, the SHA-256 of its bytes and a newline: a
file changed, added, removed or renamed changes it. Registration records it as the version tag
:data:`DIGEST_TAG` (``recsys_core.tracking.registry.register``); the service computes it again on
what it downloaded and refuses a version whose state differs (an artifact replaced through the
artifact store or its proxy after registration). Forgetting a user rewrites the state and
records the new digest before uploading it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from recsys_core.exceptions import TrackingError

DIGEST_TAG = "recsys.model_state.sha256"


def state_digest(folder: str | Path) -> str:
    """SHA-256 (hex) of every file under ``folder`` (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise TrackingError(f"no model state folder at {str(root)!r} to digest")
    outer = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                inner.update(block)
        outer.update(path.relative_to(root).as_posix().encode())
        outer.update(b"\0" + inner.hexdigest().encode() + b"\n")
    return outer.hexdigest()


def verify(folder: str | Path, expected: str, what: str) -> None:
    """Raise :class:`TrackingError` when the state in ``folder`` does not have the digest
    ``expected`` recorded for ``what`` (e.g. ``"recsys version 3"``)."""
    found = state_digest(folder)
    if found != expected:
        raise TrackingError(
            f"the model state of {what} does not match the digest recorded at registration "
            f"(recorded {expected[:16]}..., found {found[:16]}...): a file under model_state/ "
            "was changed after registration, and the version is refused. Register it again "
            "from a trusted run, or move the alias back (recsys rollback)"
        )
