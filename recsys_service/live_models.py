"""The models behind the aliases: loaded at start, polled, swapped atomically when an alias moves.

Each role (``ranking``, ``rating``) holds one immutable :class:`Served` (a version and its
:class:`~recsys_core.serving.Scorer`). A request takes the role's ``Served`` once and uses only
it, and a reload replaces it with one reference assignment, so a request in flight during a swap
finishes on the version it started with, and never sees two versions. Versions are loaded from
their ``model_state/`` artifacts (``model_store.load_recommender``: arrays and JSON, no
unpickling), checked first against the digest recorded on the version at registration (a
mismatch refuses the version). A registry that cannot be reached, an alias that disappears
or a version that cannot be loaded never unloads what is being served: the problem is logged
and shown in ``/model`` and ``/ready``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from recsys_core.models.base import Recommender
from recsys_core.privacy.pseudonyms import PSEUDONYMIZED_TAG, pseudonymize, read_key
from recsys_core.redaction import redact
from recsys_core.serving import Scorer
from recsys_core.tracking.model_store import load_recommender
from recsys_core.tracking.registry import VersionRef
from recsys_core.tracking.state_digest import DIGEST_TAG
from recsys_service.polling import Poller
from recsys_service.settings import ROLES, ServiceSettings

log = logging.getLogger(__name__)

# error codes with which the registry says "no such model or alias" (anything else: unreachable)
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


class NotReady(Exception):
    """No model can serve a role yet; the message says why."""


class RegistryUnavailable(Exception):
    """The model registry did not answer."""


@dataclass(frozen=True)
class Served:
    """One loaded version, serving one role."""

    role: str
    registered_model: str
    alias: str
    version: str
    run_id: str | None
    scorer: Scorer
    loaded_at: float
    pseudonym_key: bytes | None = field(default=None, repr=False, compare=False)
    """The key of the version's user pseudonyms; None when it holds raw user ids."""

    @property
    def algorithm(self) -> str:
        return self.scorer.model.name

    @property
    def pseudonymized(self) -> bool:
        return self.pseudonym_key is not None

    def model_user(self, user_id: str) -> str:
        """``user_id`` as the model knows it: its pseudonym for a pseudonymized version."""
        if self.pseudonym_key is None:
            return user_id
        return pseudonymize(user_id, self.pseudonym_key)


@dataclass
class RoleStatus:
    alias: str
    served: Served | None = None
    problem: str | None = None
    """Why the role cannot serve (only while nothing is loaded)."""
    registry_error: str | None = None
    """The last reload's failure while an older version keeps serving."""
    last_checked: float | None = None


def resolve_alias(name: str, alias: str) -> VersionRef | None:
    """The version behind ``alias``; ``None`` when the model or alias does not exist.

    Unlike ``registry.get_alias`` this tells "no such alias" from "no answer": the second
    raises :class:`RegistryUnavailable`, so that a registry outage never looks like an empty
    registry.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from recsys_core.tracking.registry import missing_behind_denial

    try:
        mv = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        # a locked registry answers 403 for an alias of a model not registered yet
        if exc.error_code in _ABSENT or missing_behind_denial(exc, name):
            return None
        raise RegistryUnavailable(redact(str(exc))) from exc
    except Exception as exc:
        raise RegistryUnavailable(redact(f"{type(exc).__name__}: {exc}")) from exc
    return VersionRef(name, str(mv.version), mv.run_id)


def registered_model_exists(name: str) -> bool | None:
    """Whether the registered model ``name`` exists; None when the registry cannot tell (it
    does not answer, or the name cannot be put in a search filter).

    One search answered 200 either way: unlike an alias read, which a locked registry answers
    with a 403 (and :func:`resolve_alias` then with a second request, a 404) for a model not
    registered yet, it leaves no error in the registry's log at each poll before the first
    registration."""
    from mlflow import MlflowClient

    if "'" in name or "\\" in name:  # not expressible in a filter string: the alias reads tell
        return None
    try:
        found = MlflowClient().search_registered_models(
            filter_string=f"name = '{name}'", max_results=1
        )
    except Exception as exc:  # the alias reads that follow say what is wrong
        log.debug("looking for registered model %r: %s", name, redact(str(exc)))
        return None
    return any(m.name == name for m in found)


def prepare_registry(tracking_uri: str | None = None) -> str:
    """Point MLflow at the registry and, when it is a local database, create or upgrade it now.

    ``recsys serve --workers N`` calls this once before starting the workers: N processes that
    find no database would each run MLflow's schema migration on the same file at once (one
    then fails with ``table _alembic_tmp_... already exists``). A registry behind a server is
    left alone: the workers' pollers wait for it. Returns the tracking URI (as given to MLflow).
    """
    from mlflow import MlflowClient

    from recsys_core.tracking import mlflow_run

    uri = mlflow_run.configure(tracking_uri)
    if uri.startswith("sqlite:"):
        MlflowClient().search_registered_models(max_results=1)  # creates and migrates the file
    return uri


ReloadHook = Callable[[str, str, "Served | None"], None]
"""Called after each look at an alias with the role, the outcome and what serves the role."""


class LiveModels:
    """The served version of each role, kept in step with the registry aliases."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        resolve: Callable[[str, str], VersionRef | None] = resolve_alias,
        exists: Callable[[str], bool | None] | None = None,
        on_reload: ReloadHook | None = None,
    ) -> None:
        """``resolve``: the version behind an alias; ``exists``: whether the registered model
        exists (:func:`registered_model_exists` with the default ``resolve``, else not asked).
        Until a look finds the registered model, each look asks ``exists`` first, and reads
        no alias while the model is not there."""
        self.settings = settings
        self._resolve = resolve
        if exists is None and resolve is resolve_alias:
            exists = registered_model_exists
        self._exists = exists
        self._model_seen = exists is None
        self._on_reload = on_reload
        self._status = {role: RoleStatus(alias=settings.alias(role)) for role in ROLES}
        self._refresh_lock = threading.Lock()
        self._poller = Poller(
            self.refresh,
            settings.poll_interval_s,
            "recsys-model-poller",
            "looking at the model aliases",
        )
        self.first_look = self._poller.first_pass
        """Set once the poller has looked at every alias (loaded or not)."""
        self.user_filter: Callable[[Recommender], int] | None = None
        """Applied to every version before it serves: drops forgotten users (in place)."""

    # ------------------------------------------------------------------ reading
    def served(self, role: str) -> Served:
        """What serves ``role`` now; raises :class:`NotReady` with the reason when nothing."""
        status = self._status[role]
        served = status.served  # one read: the request keeps this version to the end
        if served is None:
            raise NotReady(status.problem or "the models are still loading; retry in a moment")
        return served

    def status(self, role: str) -> RoleStatus:
        return self._status[role]

    # ------------------------------------------------------------------ reloading
    def refresh(self) -> None:
        """Look at every alias once; load and swap in the versions that moved."""
        with self._refresh_lock:
            absent = self._model_absent()
            for role in ROLES:
                outcome = self._no_version(role) if absent else self._refresh_role(role)
                if self._on_reload is not None:
                    self._on_reload(role, outcome, self._status[role].served)

    def _model_absent(self) -> bool:
        """Whether the registered model is known not to exist yet (one quiet request), until a
        look has found it: from then on the aliases are read directly."""
        if self._model_seen or self._exists is None:
            return False
        found = self._exists(self.settings.registered_model)
        if found:
            self._model_seen = True
        return found is False

    def _no_version(self, role: str) -> str:
        """The look of a role while the registered model is not there (to this account)."""
        status = self._status[role]
        status.last_checked = time.time()
        if status.served is not None:
            return self._alias_unset(role, status, status.served)
        name = self.settings.registered_model
        status.problem = (
            f"registered model {name!r} has no version with alias {status.alias!r} yet (no "
            "model of that name is registered, or none the registry lets this account read); "
            "train and promote one (recsys train)"
        )
        return "no_version"

    def _refresh_role(self, role: str) -> str:
        name = self.settings.registered_model
        status = self._status[role]
        alias = status.alias
        status.last_checked = time.time()
        current = status.served
        try:
            ref = self._resolve(name, alias)
        except RegistryUnavailable as exc:
            msg = f"the model registry cannot be reached: {exc}"
            if current is None:
                status.problem = msg + "; nothing is loaded yet, retrying"
            else:
                status.registry_error = f"{msg}; still serving version {current.version}"
            log.warning("%s role: %s", role, status.problem or status.registry_error)
            return "registry_unavailable"
        if ref is None:
            return self._alias_unset(role, status, current)
        if current is not None and current.version == ref.version:
            status.registry_error = None
            return "unchanged"
        return self._load(role, status, ref, current)

    def _alias_unset(self, role: str, status: RoleStatus, current: Served | None) -> str:
        name, alias = self.settings.registered_model, status.alias
        msg = (
            f"registered model {name!r} has no version with alias {alias!r} yet; train "
            "and promote one (recsys train)"
        )
        if current is None:
            status.problem = msg
        else:
            status.registry_error = (
                f"alias {alias!r} of {name!r} is no longer set; still "
                f"serving version {current.version}"
            )
            log.warning("%s role: %s", role, status.registry_error)
        return "no_version"

    def _load(self, role: str, status: RoleStatus, ref: VersionRef, current: Served | None) -> str:
        name, alias = self.settings.registered_model, status.alias
        try:
            tags = self._version_tags(ref)
            key = self._pseudonym_key(tags)
            scorer = self._scorer_for(ref, tags.get(DIGEST_TAG))
        except Exception as exc:
            msg = redact(f"version {ref.version} behind alias {alias!r} cannot be loaded: {exc}")
            if current is None:
                status.problem = msg
            else:
                status.registry_error = f"{msg}; still serving version {current.version}"
            log.error("%s role: %s", role, msg)
            return "load_failed"
        status.served = Served(
            role, name, alias, ref.version, ref.run_id, scorer, time.time(), pseudonym_key=key
        )
        status.problem = status.registry_error = None
        log.info(
            "%s role: serving %s version %s (%s, alias %r)%s",
            role,
            name,
            ref.version,
            scorer.model.name,
            alias,
            f", was version {current.version}" if current is not None else "",
        )
        return "loaded"

    @staticmethod
    def _version_tags(ref: VersionRef) -> dict[str, str]:
        from mlflow import MlflowClient

        return dict(MlflowClient().get_model_version(ref.name, ref.version).tags or {})

    @staticmethod
    def _pseudonym_key(tags: dict[str, str]) -> bytes | None:
        """The pseudonym key when the version is tagged pseudonymized (a ConfigError without
        it)."""
        if tags.get(PSEUDONYMIZED_TAG, "").lower() != "true":
            return None
        return read_key()

    def _scorer_for(self, ref: VersionRef, digest: str | None) -> Scorer:
        # both roles behind the same version share one loaded model
        for other in self._status.values():
            if other.served is not None and other.served.version == ref.version:
                return other.served.scorer
        if digest is None:
            log.warning(
                "%s version %s has no %s tag (registered before digests were "
                "recorded): its model state is served unverified",
                ref.name,
                ref.version,
                DIGEST_TAG,
            )
        # a state that differs from the digest recorded at registration raises: refused
        model = load_recommender(ref, digest=digest)
        if self.user_filter is not None:
            self.user_filter(model)
        return Scorer(model)

    # ------------------------------------------------------------------ forgetting
    def drop_users(self, select: Callable[[Iterable[str]], set[str]]) -> int:
        """Serve copies of the loaded models without the users ``select`` picks from their
        vocabulary; returns how many users were dropped (summed over distinct models).

        A request in flight keeps the model it took; the next one gets the copy.
        """
        dropped = 0
        with self._refresh_lock:
            replaced: dict[int, Scorer] = {}
            for status in self._status.values():
                served = status.served
                if served is None:
                    continue
                old = served.scorer
                if id(old) not in replaced:
                    gone = select(old.model.user_vocab_.ids)
                    if not gone:
                        replaced[id(old)] = old
                        continue
                    model = copy.deepcopy(old.model)
                    dropped += model.forget_users(gone)
                    replaced[id(old)] = Scorer(model)
                if replaced[id(old)] is not old:
                    status.served = dataclasses.replace(served, scorer=replaced[id(old)])
        return dropped

    # ------------------------------------------------------------------ polling
    def start(self) -> None:
        """Poll the aliases in a background thread (the first look happens at once)."""
        self._poller.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._poller.stop(timeout)
