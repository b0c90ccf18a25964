"""The current champion, loaded for the gate: a version that cannot be loaded is a finding.

A champion whose artifacts are gone (an artifact store reset while the registry lived on, a
deleted run, a state written by an older recsys) must not stop every later run: the gate reports
"champion unavailable: <reason>" and applies its ``on_champion_unavailable`` policy. Only the
registry lookup itself raises, as a :class:`~recsys_core.exceptions.TrackingError` (transient,
retried): "no champion" is never concluded from a failed request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from recsys_core.exceptions import RecsysError, TrackingError
from recsys_core.models.base import Recommender
from recsys_core.tracking import model_store, registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionState:
    """What the registry holds under the champion alias, and whether it can be used."""

    version: str | None
    """The version behind the alias; None when no champion is registered yet."""
    model: Recommender | None
    """The fitted model; None when there is no champion or it cannot be loaded."""
    unavailable: str | None
    """Why the champion cannot be loaded (artifacts missing, unreadable, ...); None if loaded."""


def load_champion(registered_model: str, alias: str = registry.CHAMPION) -> ChampionState:
    """Load the version behind ``alias`` from its ``model_state/`` artifacts (no unpickling)."""
    from mlflow.exceptions import MlflowException

    ref = registry.get_alias(registered_model, alias)
    if ref is None:
        return ChampionState(None, None, None)
    try:
        model = model_store.load_recommender(ref)
    except (MlflowException, OSError, RecsysError, ValueError, KeyError) as exc:
        reason = f"its model state cannot be loaded: {exc}"
        log.warning("%s %s of %r unavailable: %s", alias, ref.version, registered_model, reason)
        return ChampionState(ref.version, None, reason)
    return ChampionState(ref.version, model, None)


def champion_digest(registered_model: str,
                    alias: str = registry.CHAMPION) -> tuple[str | None, str | None]:
    """The version behind ``alias`` and the digest of the snapshot it was trained on.

    ``(None, None)`` when there is no such version; ``(version, None)`` when the version records
    no digest (neither its ``data_digest`` tag nor its run's ``recsys.data_digest``).
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    ref = registry.get_alias(registered_model, alias)
    if ref is None:
        return None, None
    client = MlflowClient()
    try:
        tags = client.get_model_version(registered_model, ref.version).tags
        found = tags.get("data_digest")
        if not found and ref.run_id:
            found = client.get_run(ref.run_id).data.tags.get("recsys.data_digest")
    except MlflowException as exc:
        raise TrackingError(f"cannot read the data digest of {registered_model!r} version "
                            f"{ref.version}: {exc}") from exc
    return ref.version, found or None
