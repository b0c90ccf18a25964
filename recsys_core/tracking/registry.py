"""Model registry operations: register, alias, promote, roll back (aliases, never stages).

``challenger`` marks the newest registered candidate; ``champion`` the version in service. The
champion alias is moved only by ``promote`` (the last step of a passing run) and ``rollback``.
Every promotion writes its evidence on the version (previous champion, gate metrics, flow run,
data digest, time), which is the audit trail MLflow itself does not keep.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from recsys_core.exceptions import RecsysError, TrackingError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class VersionRef:
    name: str
    version: str
    run_id: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def ensure_registered_model(name: str) -> None:
    from mlflow.exceptions import MlflowException

    c = _client()
    try:
        c.get_registered_model(name)
    except MlflowException:
        try:
            c.create_registered_model(name, description="recsys recommender (aliases: champion, "
                                                        "challenger)")
        except MlflowException:
            c.get_registered_model(name)  # created concurrently


def register(name: str, model_uri: str, run_id: str, tags: dict[str, Any],
             model_id: str | None = None) -> VersionRef:
    """Create a new version from a logged model and alias it ``challenger``."""
    ensure_registered_model(name)
    c = _client()
    mv = c.create_model_version(
        name, model_uri, run_id=run_id, tags={k: str(v) for k, v in tags.items()},
        model_id=model_id,
    )  # fmt: skip
    _wait_ready(name, mv.version)
    c.set_registered_model_alias(name, CHALLENGER, mv.version)
    return VersionRef(name, str(mv.version), run_id)


def _wait_ready(name: str, version: str, timeout: float = 120.0) -> None:
    c = _client()
    deadline = time.monotonic() + timeout
    while True:
        mv = c.get_model_version(name, version)
        if mv.status == "READY":
            return
        if mv.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise TrackingError(f"model version {name}/{version} is {mv.status}; not usable")
        time.sleep(0.5)


def get_alias(name: str, alias: str = CHAMPION) -> VersionRef | None:
    """The version behind ``alias`` (``get_model_version_by_alias``), or None."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return VersionRef(name, str(mv.version), mv.run_id)


def tag_version(ref: VersionRef, tags: dict[str, Any]) -> None:
    c = _client()
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        c.set_model_version_tag(ref.name, ref.version, key, text[:5000])


def promote(ref: VersionRef, evidence: dict[str, Any]) -> VersionRef | None:
    """Move ``champion`` to ``ref``; returns the previous champion. Call it last."""
    previous = get_alias(ref.name, CHAMPION)
    tag_version(
        ref,
        {
            **evidence,
            "previous_champion": previous.version if previous else "none",
            "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": "promoting",
        },
    )
    # the evidence is on the version before the alias moves; the status says the move happened
    _client().set_registered_model_alias(ref.name, CHAMPION, ref.version)
    tag_version(ref, {"status": "champion"})
    return previous


def rollback(name: str) -> tuple[VersionRef, VersionRef]:
    """Move ``champion`` back to the version it replaced; returns (from, to)."""
    current = get_alias(name, CHAMPION)
    if current is None:
        raise RecsysError(f"registered model {name!r} has no champion; nothing to roll back")
    mv = _client().get_model_version(name, current.version)
    previous = mv.tags.get("previous_champion", "none")
    if previous in ("", "none"):
        raise RecsysError(
            f"champion {name}/{current.version} replaced no earlier version; "
            "nothing to roll back to"
        )
    target = VersionRef(name, previous)
    tag_version(current, {"status": "rolled_back",
                          "rolled_back_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    _client().set_registered_model_alias(name, CHAMPION, previous)
    # the restored version keeps its own previous_champion, so rollbacks can be chained
    return current, target
