"""The current champion, loaded for the gate: a version that cannot be loaded is a finding.

A champion whose artifacts are gone (an artifact store reset while the registry lived on, a
deleted run, a state written by an older recsys) must not stop every later run: the gate reports
"champion unavailable: <reason>" and applies its ``on_champion_unavailable`` policy. Only the
registry lookup itself raises, as a :class:`~recsys_core.exceptions.TrackingError` (transient,
retried): "no champion" is never concluded from a failed request.

The gate re-scores a champion as it was judged: from ``evaluated_state/`` when the version has
one (its served ``model_state/`` was refit on rows that the next split may test on), else from
``model_state/``.
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
    state_path: str | None = None
    """The artifact path the model was loaded from (``evaluated_state`` or ``model_state``)."""


def load_champion(registered_model: str, alias: str) -> ChampionState:
    """Load the version behind ``alias`` as it was judged (see the module docstring)."""
    return load_champions(registered_model, [alias])[alias]


def load_champions(registered_model: str, aliases: list[str]) -> dict[str, ChampionState]:
    """:func:`load_champion` of each alias; a version behind two aliases is loaded once (the
    same :class:`ChampionState` is returned for both)."""
    refs = {alias: registry.get_alias(registered_model, alias) for alias in aliases}
    loaded: dict[str, ChampionState] = {}
    out = {}
    for alias, ref in refs.items():
        if ref is None:
            out[alias] = ChampionState(None, None, None)
            continue
        if ref.version not in loaded:
            loaded[ref.version] = _load(ref, alias)
        out[alias] = loaded[ref.version]
    return out


def _load(ref: registry.VersionRef, alias: str) -> ChampionState:
    from mlflow.exceptions import MlflowException

    path = model_store.STATE_PATH
    try:
        if model_store.has_state(ref, model_store.EVALUATED_PATH):
            path = model_store.EVALUATED_PATH
        model = model_store.load_recommender(ref, path=path)
    except (MlflowException, OSError, RecsysError, ValueError, KeyError) as exc:
        reason = f"its model state cannot be loaded: {exc}"
        log.warning("%s %s of %r unavailable: %s", alias, ref.version, ref.name, reason)
        return ChampionState(ref.version, None, reason)
    return ChampionState(ref.version, model, None, path)


def champion_digest(
    registered_model: str,
    alias: str = registry.ROLE_ALIASES[registry.RANKING],
) -> tuple[str | None, str | None]:
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
        raise TrackingError(
            f"cannot read the data digest of {registered_model!r} version {ref.version}: {exc}"
        ) from exc
    return ref.version, found or None
