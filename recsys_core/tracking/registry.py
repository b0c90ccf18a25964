"""Model registry operations: register, alias, promote, roll back (aliases, never stages).

``challenger`` marks the newest registered candidate. What is served has two roles, each with its
own champion alias in the same registered model (:data:`ROLE_ALIASES`): ``champion-ranking``
serves top-k lists, ``champion-rating`` serves rating predictions; one version may hold both.
A champion alias is moved only by ``promote`` (the last step of a run whose gate passed for that
role) and ``rollback``. Every promotion writes its evidence on the version (previous champion,
gate metrics, flow run, data digest, time), which is the audit trail MLflow itself does not keep.

Tags are kept per role, under ``role.<role>`` (``role.ranking``, ``role.rating``; an alias that
is not a role alias uses its own name): ``role.<role>`` is the version's state for that role
(``champion``, ``replaced``, ``rolled_back``, ``stale``, ``refused``), ``role.<role>.previous``
the champion it replaced (what ``rollback`` walks back to).

Promotion is a compare-and-set. The gate judged the challenger against one champion version
(or against none); ``promote(ref, evidence, expected=...)`` re-reads the alias, under the
promotion lock of :mod:`recsys_core.tracking.promotion_lock`, and moves it only if it still
points at ``expected``. If another run promoted meanwhile, the run is refused as stale
(:class:`~recsys_core.exceptions.StalePromotionError`) rather than re-gated here: re-gating
would mean re-scoring the new champion on this run's split inside the lock, so a slow
evaluation would hold every other promotion; a stale run is cheap to re-run, and its version is
tagged ``status=stale``.

``promote`` is idempotent. A retry after a partial write (alias moved, tags not yet written)
finds the alias already on ``ref`` and completes the same tags: ``previous_champion`` is always
the judged version, never the version itself, so the rollback chain stays intact.

The role tags never claim two champions for one role: the version that loses the alias is
tagged ``replaced`` (``rolled_back`` on rollback) before the new holder is tagged ``champion``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys_core.exceptions import ConfigError, RecsysError, StalePromotionError, TrackingError
from recsys_core.models.base import RANKING, RATING, ROLES
from recsys_core.tracking.promotion_lock import promotion_lock
from recsys_core.tracking.state_digest import DIGEST_TAG, state_digest

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
ROLE_ALIASES: dict[str, str] = {RANKING: "champion-ranking", RATING: "champion-rating"}
"""The champion alias of each serving role: lists (``ranking``) and rating predictions."""


def role_of(alias: str) -> str:
    """The role an alias stands for (``champion-ranking`` -> ``ranking``); other aliases stand
    for themselves, so that their tags do not mix with a role's."""
    return next((r for r, a in ROLE_ALIASES.items() if a == alias), alias)


def role_tag(alias: str, field: str | None = None) -> str:
    """The version tag of ``alias``'s role: ``role.ranking``, ``role.ranking.previous``..."""
    return f"role.{role_of(alias)}" + (f".{field}" if field else "")


def alias_of(role: str) -> str:
    """The champion alias of ``role``; a ConfigError names the roles for anything else."""
    try:
        return ROLE_ALIASES[role]
    except KeyError:
        raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}") from None


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
            c.create_registered_model(
                name,
                description="recsys recommender (aliases: "
                f"{', '.join(ROLE_ALIASES.values())}, {CHALLENGER})",
            )
        except MlflowException:
            c.get_registered_model(name)  # created concurrently


def register(
    name: str,
    model_uri: str,
    run_id: str,
    tags: dict[str, Any],
    model_id: str | None = None,
    alias: str | None = CHALLENGER,
    state_dir: str | Path | None = None,
) -> VersionRef:
    """Create a new version from a logged model and alias it ``alias`` (``challenger``; None:
    no alias, for a version kept only as evidence). ``state_dir``: the local folder logged as
    the version's ``model_state/``, whose digest is recorded as the tag ``DIGEST_TAG`` (the
    service refuses a version whose state no longer matches it)."""
    if state_dir is not None:
        tags = {**tags, DIGEST_TAG: state_digest(state_dir)}
    ensure_registered_model(name)
    c = _client()
    mv = c.create_model_version(
        name,
        model_uri,
        run_id=run_id,
        tags={k: str(v) for k, v in tags.items()},
        model_id=model_id,
    )
    _wait_ready(name, mv.version)
    if model_id is not None:
        _link_logged_model(model_id, name, str(mv.version))
    if alias is not None:
        c.set_registered_model_alias(name, alias, mv.version)
    return VersionRef(name, str(mv.version), run_id)


def _link_logged_model(model_id: str, name: str, version: str) -> None:
    """Record the new version on its logged model (the tag ``mlflow.modelVersions``, as
    ``mlflow.register_model`` does; the client's ``create_model_version`` does not): the MLflow
    UI's model page then shows the model registered and links to its versions. A failure only
    loses that link, never the version."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    c = _client()
    try:
        tags = c.get_logged_model(model_id).tags
        linked = json.loads(tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
        entry = {"name": name, "version": version}
        if entry not in linked:  # a retried registration links once
            c.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*linked, entry])})
    except (MlflowException, ValueError) as exc:
        log.warning(
            "version %s of %s not linked to its logged model %s: %s", version, name, model_id, exc
        )


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


# error codes meaning "no such alias / model", as opposed to a server or network failure
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def get_alias(name: str, alias: str) -> VersionRef | None:
    """The version behind ``alias`` (``get_model_version_by_alias``), or None when unset.

    A registry that cannot be reached raises :class:`TrackingError`: "no champion" must never be
    concluded from a failed request.
    """
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND or missing_behind_denial(exc, name):
            return None
        raise TrackingError(f"cannot read the alias {alias!r} of {name!r}: {exc}") from exc
    return VersionRef(name, str(mv.version), mv.run_id)


def missing_behind_denial(exc: Exception, name: str) -> bool:
    """Whether ``exc``, a PERMISSION_DENIED of an alias read, only means that the registered
    model ``name`` does not exist: MLflow's basic-auth app answers 403, not 404, to an alias of a
    model that is not there (it finds no model to check the permission on). The model itself
    is then looked up (a 404 when absent: reading is the default permission); any other answer
    leaves the denial standing."""
    from mlflow.exceptions import MlflowException

    if getattr(exc, "error_code", None) != "PERMISSION_DENIED":
        return False
    try:
        _client().get_registered_model(name)
    except MlflowException as again:
        return again.error_code == "RESOURCE_DOES_NOT_EXIST"
    except Exception:  # no answer: the denial stands, the caller says it could not read
        return False
    return False


def tag_version(ref: VersionRef, tags: dict[str, Any]) -> None:
    c = _client()
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        c.set_model_version_tag(ref.name, ref.version, key, text[:5000])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def promote(
    ref: VersionRef, evidence: dict[str, Any], *, expected: str | None, alias: str
) -> VersionRef | None:
    """Move ``alias`` to ``ref`` if it still points at ``expected`` (the version the gate judged,
    None for "no champion"); returns the replaced version. Call it last.

    Raises
    ------
    StalePromotionError
        ``alias`` points at another version than ``expected``: re-run to judge the challenger
        against the current champion.
    """
    state, prev_tag = role_tag(alias), role_tag(alias, "previous")
    if expected is not None and str(expected) == ref.version:
        raise RecsysError(f"{ref.name} version {ref.version} cannot replace itself as {alias}")
    with promotion_lock(ref.name, alias):
        current = get_alias(ref.name, alias)
        now = current.version if current else None
        previous = VersionRef(ref.name, str(expected)) if expected is not None else None
        if now == ref.version:
            # a retry after a partial write: the alias already moved, complete the same tags
            log.info(
                "%s version %s already holds %r; completing its tags", ref.name, ref.version, alias
            )
        elif now != (str(expected) if expected is not None else None):
            tag_version(
                ref,
                {
                    state: "stale",
                    role_tag(alias, "stale_at"): _now(),
                    role_tag(alias, "stale_reason"): f"judged against {expected or 'no champion'}, "
                    f"{alias} is {now or 'unset'} now",
                },
            )
            raise StalePromotionError(
                f"{alias} of {ref.name!r} is version {now or 'none'} now, but the gate judged "
                f"version {ref.version} against {expected or 'no champion'}: not promoted. "
                f"Re-run the training to judge it against "
                f"{f'version {now}' if now else 'no champion'}.",
                judged=expected,
                current=now,
            )
        else:
            # the evidence is on the version before the alias moves
            tag_version(
                ref,
                {
                    **evidence,
                    prev_tag: expected or "none",
                    role_tag(alias, "promoted_at"): _now(),
                    state: "promoting",
                },
            )
            _client().set_registered_model_alias(ref.name, alias, ref.version)
        if previous is not None:
            tag_version(previous, {state: "replaced", role_tag(alias, "replaced_by"): ref.version})
        tag_version(ref, {prev_tag: expected or "none", state: "champion"})
    return previous


def rollback(
    name: str, *, alias: str, expected: str | None = None
) -> tuple[VersionRef, VersionRef]:
    """Move ``alias`` back to the version it replaced; returns (from, to).

    ``expected``, when given, is the version the caller means to roll back: if ``alias`` has
    moved since, nothing changes (:class:`StalePromotionError`).
    """
    from mlflow.exceptions import MlflowException

    state = role_tag(alias)
    with promotion_lock(name, alias):
        current = get_alias(name, alias)
        if current is None:
            raise RecsysError(f"registered model {name!r} has no {alias}; nothing to roll back")
        if expected is not None and current.version != str(expected):
            raise StalePromotionError(
                f"{alias} of {name!r} is version {current.version} now, not {expected}: "
                "nothing rolled back; check the registry and roll back again if needed",
                judged=str(expected),
                current=current.version,
            )
        mv = _client().get_model_version(name, current.version)
        previous = mv.tags.get(role_tag(alias, "previous"), "none")
        if previous in ("", "none"):
            raise RecsysError(
                f"{alias} {name}/{current.version} replaced no earlier version; "
                "nothing to roll back to"
            )
        if previous == current.version:
            raise RecsysError(
                f"{alias} {name}/{current.version} records itself as the version it replaced; "
                f"set its {role_tag(alias, 'previous')} tag by hand"
            )
        target = VersionRef(name, previous)
        try:
            _client().get_model_version(name, previous)
        except MlflowException as exc:
            raise RecsysError(
                f"{alias} {name}/{current.version} replaced version {previous}, which no "
                f"longer exists ({exc}); nothing rolled back"
            ) from exc
        tag_version(current, {state: "rolled_back", role_tag(alias, "rolled_back_at"): _now()})
        _client().set_registered_model_alias(name, alias, previous)
        # the restored version keeps its own previous tag, so rollbacks can be chained
        tag_version(target, {state: "champion"})
    return current, target
