"""Load registered models from their ``model_state/`` artifacts: arrays and JSON, never pickles.

Every run logs the fitted state of its model under the artifact path ``model_state`` (written by
``Recommender.save``: ``state.npz`` read with ``allow_pickle=False``, sparse matrices as ``.npz``,
vocabularies and settings as JSON). recsys loads its own champions from there, so no code stored
in the artifact store is ever imported or unpickled. The MLflow pyfunc logged beside it is for
``mlflow models serve`` users, and is to be loaded only from a trusted artifact store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from recsys_core.exceptions import TrackingError
from recsys_core.models.base import Recommender
from recsys_core.tracking.registry import VersionRef

STATE_PATH = "model_state"


def download_state(ref: VersionRef, dst: str | Path) -> Path:
    """Download the ``model_state/`` folder of version ``ref`` into ``dst``; returns the folder."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = ref.run_id
    try:
        if run_id is None:
            run_id = mlflow.MlflowClient().get_model_version(ref.name, ref.version).run_id
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=STATE_PATH, dst_path=str(dst))
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"the model state of {ref.name} version {ref.version} (run {run_id}) cannot be "
            f"read from the artifact store: {exc}. Check the artifact store (recsys doctor)."
        ) from exc
    return Path(local)


def load_recommender(ref: VersionRef, dst: str | Path | None = None) -> Recommender:
    """The fitted model of version ``ref``, loaded from its ``model_state/`` (no unpickling)."""
    if dst is not None:
        return _load(download_state(ref, dst), ref)
    with tempfile.TemporaryDirectory(prefix="recsys-state-") as tmp:
        return _load(download_state(ref, tmp), ref)


def _load(folder: Path, ref: VersionRef) -> Recommender:
    try:
        return Recommender.load(folder)
    except (OSError, KeyError, ValueError) as exc:
        raise TrackingError(
            f"the model state of {ref.name} version {ref.version} is incomplete or "
            f"unreadable ({exc}); the version cannot be loaded"
        ) from exc
