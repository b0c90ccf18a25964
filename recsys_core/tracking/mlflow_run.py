"""MLflow runs: where they are tracked, and what each run logs.

Embedded default (no server): ``sqlite:///.recsys/mlflow.db`` with artifacts in
``.recsys/mlartifacts`` under the working directory. ``MLFLOW_TRACKING_URI`` overrides it; with a
tracking server, artifacts are proxied by the server (clients need only the tracking URI).

Every function takes an explicit ``run_id`` and goes through ``MlflowClient``, so pipeline stages
running in different threads or processes never depend on a global "active run".
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recsys_core.exceptions import TrackingError
from recsys_core.settings import get_settings

log = logging.getLogger(__name__)

EMBEDDED_DIR = ".recsys"
# the tag value limit of MLflow's stores (8000 characters with MLflow 3)
MAX_TAG = 8000


def _mlflow():
    import mlflow

    return mlflow


def default_tracking_uri(base: str | Path | None = None) -> str:
    root = Path(base or os.getcwd()) / EMBEDDED_DIR
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


_written: str | None = None
"""The registry URI this process last set: ``mlflow.set_registry_uri`` also writes it into
``$MLFLOW_REGISTRY_URI`` (for subprocesses), where it must not pass for the user's setting."""
_user_registry: str | None = None


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri``, ``$MLFLOW_TRACKING_URI`` or the embedded default.

    The registry follows the tracking URI unless ``$MLFLOW_REGISTRY_URI`` names another one.
    """
    global _written, _user_registry
    mlflow = _mlflow()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    env = os.environ.get("MLFLOW_REGISTRY_URI") or None
    if env != _written:  # not what this process wrote: the user's own setting, or its removal
        _user_registry = env
    registry = _user_registry or uri
    mlflow.set_registry_uri(registry)
    _written = registry
    return uri


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def client():
    from mlflow import MlflowClient

    return MlflowClient()


def ensure_experiment(name: str) -> str:
    """Id of experiment ``name``, created if missing (local artifacts under ``.recsys``)."""
    mlflow = _mlflow()
    c = client()
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = None
    if is_local(mlflow.get_tracking_uri()):
        location = (Path(os.getcwd()) / EMBEDDED_DIR / "mlartifacts").resolve().as_uri()
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another run
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def start_run(experiment: str, run_name: str | None = None, tags: Mapping[str, str] | None = None):
    """Create a run and return its id (the run stays RUNNING until ``end_run``)."""
    exp_id = ensure_experiment(experiment)
    run = client().create_run(
        exp_id, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    return run.info.run_id


def end_run(run_id: str, status: str = "FINISHED") -> None:
    client().set_terminated(run_id, status=status)


def artifact_uri(run_id: str) -> str:
    return client().get_run(run_id).info.artifact_uri


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flat ``{"model.factors": "100"}`` strings for ``log_params``."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    flat = flatten(params)
    items = [Param(k, v[:6000]) for k, v in flat.items()]
    for start in range(0, len(items), 100):
        client().log_batch(run_id, params=items[start : start + 100])


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    items = [Metric(k, float(v), ts, step or 0) for k, v in metrics.items() if v is not None]
    for start in range(0, len(items), 500):
        client().log_batch(run_id, metrics=items[start : start + 500])


def log_history(run_id: str, history: Iterable[Mapping[str, float]]) -> None:
    """Per-epoch metrics as stepped metrics named ``epoch/train_loss``, ``epoch/val_rmse``..."""
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    items = []
    for row in history:
        step = int(row.get("epoch", 0))
        for key, value in row.items():
            if key != "epoch" and value is not None:
                items.append(Metric(f"epoch/{key}", float(value), ts, step))
    for start in range(0, len(items), 500):
        client().log_batch(run_id, metrics=items[start : start + 500])


def set_tags(run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:MAX_TAG]) for k, v in tags.items()]
    if items:
        client().log_batch(run_id, tags=items)


def set_description(run_id: str, markdown: str) -> None:
    """The run's description in the MLflow UI (the ``mlflow.note.content`` tag, markdown)."""
    client().set_tag(run_id, "mlflow.note.content", markdown[:MAX_TAG])


# a model version's description is a VARCHAR(5000) in MLflow's SQL stores: PostgreSQL refuses a
# longer one (SQLite does not check), and the registration would fail after the version exists
MAX_VERSION_DESCRIPTION = 5000
_CUT_NOTE = "\n\n(cut to the registry's 5,000 characters: the whole decision is in the run)"


def set_version_description(name: str, version: str, markdown: str) -> None:
    """The description of a registered model version (shown on its page in the MLflow UI), cut
    to what the registry's database holds."""
    if len(markdown) > MAX_VERSION_DESCRIPTION:
        markdown = markdown[: MAX_VERSION_DESCRIPTION - len(_CUT_NOTE)] + _CUT_NOTE
    client().update_model_version(name, version, description=markdown)


def run_url(run_id: str) -> str | None:
    """Link to the run in the MLflow UI; None for the embedded store (no UI server known)."""
    mlflow = _mlflow()
    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    run = client().get_run(run_id)
    return f"{uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"


def log_artifacts(run_id: str, local_dir: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifacts(run_id, str(local_dir), artifact_path)


def log_artifact(run_id: str, local_path: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(local_path), artifact_path)


def log_json(run_id: str, data: Any, artifact_file: str) -> None:
    client().log_dict(run_id, data, artifact_file)


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    client().log_text(run_id, text, artifact_file)


def log_dataset(
    run_id: str, *, digest: str, source: str, name: str, n_rows: int, context: str = "training"
) -> None:
    """Record the data snapshot as the run's dataset input (lineage in the MLflow UI)."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    # a DatasetSource needs a URI; the digest names the snapshot whatever the origin
    src = HTTPDatasetSource(url=source if "://" in source else f"recsys://snapshot/{digest[:16]}")
    ds = MetaDataset(source=src, name=name, digest=digest[:36])
    entity = ds._to_mlflow_entity()
    tags = [InputTag("mlflow.data.context", context), InputTag("rows", str(n_rows))]
    client().log_inputs(run_id, datasets=[DatasetInput(entity, tags=tags)])


def git_commit(cwd: str | Path | None = None) -> str:
    """The commit of the checkout (or ``$RECSYS_GIT_COMMIT`` in images), ``unknown`` otherwise."""
    commit = get_settings().training.git_commit
    if commit:
        return commit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def tracking_error(action: str, exc: BaseException) -> TrackingError:
    from mlflow import get_tracking_uri

    return TrackingError(
        f"MLflow failed to {action} at {get_tracking_uri()}: {exc}. Check that the tracking "
        "server is up (recsys doctor) and that MLFLOW_TRACKING_URI is right."
    )


def temp_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="recsys-")
