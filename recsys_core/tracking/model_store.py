"""Load registered models from their ``model_state/`` artifacts: arrays and JSON, never pickles.

Every run logs the fitted state of its model under the artifact path ``model_state`` (written by
``Recommender.save``: ``state.npz`` read with ``allow_pickle=False``, sparse matrices as ``.npz``,
vocabularies and settings as JSON). recsys loads its own champions from there, so no code stored
in the artifact store is ever imported or unpickled. The MLflow pyfunc logged beside it is for
``mlflow models serve`` users, and is to be loaded only from a trusted artifact store.

With ``refit_full`` (the default) the served model is refit on every row of the split after the
gate passed: ``model_state/`` then holds the refit, and ``evaluated_state/`` the model the gate
judged, trained on the training part only. A later gate re-scores a champion from
``evaluated_state/`` when there is one, so that it is never scored on rows it was trained on.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from recsys_core.exceptions import TrackingError
from recsys_core.models.base import Recommender
from recsys_core.tracking.registry import VersionRef
from recsys_core.tracking.state_digest import verify

STATE_PATH = "model_state"
"""The served model's state (the refit on all the split's rows, with ``refit_full``)."""
EVALUATED_PATH = "evaluated_state"
"""The state of the model the gate judged, when it differs from the served one."""


def _run_id(ref: VersionRef) -> str:
    import mlflow

    if ref.run_id is not None:
        return ref.run_id
    run_id = mlflow.MlflowClient().get_model_version(ref.name, ref.version).run_id
    if not run_id:
        raise TrackingError(
            f"{ref.name} version {ref.version} was registered without a run; "
            "its model state cannot be found"
        )
    return str(run_id)


def has_state(ref: VersionRef, path: str) -> bool:
    """Whether version ``ref`` has a model state under the artifact path ``path``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        listed = mlflow.MlflowClient().list_artifacts(_run_id(ref), path)
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"the artifacts of {ref.name} version {ref.version} cannot be listed: {exc}. "
            "Check the artifact store (recsys doctor)."
        ) from exc
    return any(a.path == f"{path}/state.npz" for a in listed)


def download_state(ref: VersionRef, dst: str | Path, path: str = STATE_PATH) -> Path:
    """Download the state folder ``path`` of version ``ref`` into ``dst``; returns the folder."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = ref.run_id
    try:
        run_id = _run_id(ref)
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(dst)
        )
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"the model state {path}/ of {ref.name} version {ref.version} (run {run_id}) cannot be "
            f"read from the artifact store: {exc}. Check the artifact store (recsys doctor)."
        ) from exc
    return Path(local)


def load_recommender(
    ref: VersionRef,
    dst: str | Path | None = None,
    path: str = STATE_PATH,
    digest: str | None = None,
) -> Recommender:
    """The fitted model of version ``ref``, loaded from its ``path`` state (``model_state/``, the
    served model, by default; no unpickling). With ``digest`` (the version's
    ``recsys.model_state.sha256`` tag), the downloaded files are checked against it first and a
    mismatch raises :class:`TrackingError` (``recsys_core.tracking.state_digest``)."""
    if dst is not None:
        return _load(_checked(download_state(ref, dst, path), ref, digest), ref)
    with tempfile.TemporaryDirectory(prefix="recsys-state-") as tmp:
        return _load(_checked(download_state(ref, tmp, path), ref, digest), ref)


def _checked(folder: Path, ref: VersionRef, digest: str | None) -> Path:
    if digest is not None:
        verify(folder, digest, f"{ref.name} version {ref.version}")
    return folder


def _load(folder: Path, ref: VersionRef) -> Recommender:
    try:
        return Recommender.load(folder)
    except (OSError, KeyError, ValueError) as exc:
        raise TrackingError(
            f"the model state of {ref.name} version {ref.version} is incomplete or "
            f"unreadable ({exc}); the version cannot be loaded"
        ) from exc
