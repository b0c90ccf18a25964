"""Forgetting users in the registered versions: their rows leave every saved model state.

A version's model state is stored twice: under the run's ``model_state/`` and inside the logged
MLflow model (its ``model_dir`` artifact). Both are found by walking the artifact trees for
folders that hold ``model.json`` and ``user_ids.json`` (a saved ``Recommender``), and each is
rewritten by :meth:`Recommender.forget_users` (user rows dropped, item-level state unchanged) and
written back in place (the served ``model_state/``'s digest tag is updated first,
:mod:`recsys_core.tracking.state_digest`), through MLflow's artifact repositories (a local
file store, S3, or the tracking server's artifact proxy: the client needs no key of its own).
Parquet tables with a ``user`` column among the run's artifacts (the quarantined rows of
validation) lose those rows.
A logged model's ``input_example.json``/``serving_input_example.json`` written before examples
used a synthetic user (:data:`recsys_core.tracking.pyfunc.EXAMPLE_USER`) get that user in place of
a forgotten id.

Idempotent, and safe to re-run after a failure: a rewritten folder is staged on local disk (with
a ``ready`` mark) before it is uploaded and removed only once the upload succeeded, so a re-run
uploads the staged copy rather than re-reading a half-written folder. A version from which users
were removed gets the tag ``forget.rewritten`` (how many users were removed from it, in total; no
id).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.exceptions import TrackingError
from recsys_core.models.base import Recommender
from recsys_core.redaction import redact

log = logging.getLogger(__name__)

REWRITTEN_TAG = "forget.rewritten"
_MODEL_FILES = {"model.json", "user_ids.json"}
_EXAMPLE_FILES = {"input_example.json", "serving_input_example.json"}


@dataclass
class VersionRewrite:
    """What forgetting changed in one registered version."""

    name: str
    version: str
    users_removed: int = 0
    rows_removed: int = 0
    folders: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.users_removed or self.rows_removed)


def rewrite_state(folder: str | Path, users: Iterable[str]) -> int:
    """Drop ``users`` from the saved model in ``folder``, in place; returns how many it held."""
    model = Recommender.load(folder)
    removed = model.forget_users(users)
    if removed:
        model.save(folder)
    return removed


def rewrite_table(path: str | Path, users: Iterable[str]) -> int:
    """Drop the rows of ``users`` from a Parquet table with a ``user`` column; rows removed."""
    frame = pd.read_parquet(path)
    if "user" not in frame.columns:
        return 0
    drop = frame["user"].astype(str).isin(set(map(str, users)))
    if drop.any():
        tmp = Path(f"{path}.tmp")
        frame[~drop].to_parquet(tmp, index=False)
        tmp.replace(path)
    return int(drop.sum())


def rewrite_example(path: str | Path, users: Iterable[str]) -> int:
    """Replace ``users`` by the synthetic example user in an MLflow input example (JSON);
    returns how many values were replaced."""
    from recsys_core.tracking.pyfunc import EXAMPLE_USER

    gone = set(map(str, users))
    count = 0

    def scrub(value: Any) -> Any:
        nonlocal count
        if isinstance(value, str) and value in gone:
            count += 1
            return EXAMPLE_USER
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        return value

    data = scrub(json.loads(Path(path).read_text()))
    if count:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    return count


def forget_in_versions(
    users: list[str],
    staging: str | Path,
    names: list[str] | None = None,
    done: list[VersionRewrite] | None = None,
) -> list[VersionRewrite]:
    """Remove ``users`` from every version of the registered models ``names`` (all: None).

    Each version's outcome is appended to ``done`` as soon as it is complete, so that a caller
    knows what was done when a later version fails.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    out: list[VersionRewrite] = [] if done is None else done
    try:
        if names is None:
            names = [m.name for m in client.search_registered_models(max_results=1000)]
        for name in names:
            versions = client.search_model_versions(f"name = '{name}'", max_results=10000)
            for mv in sorted(versions, key=lambda v: int(v.version)):
                out.append(_forget_in_version(client, mv, users, Path(staging)))
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"forgetting in the registered versions stopped: {redact(str(exc))}. What was done "
            "is in the audit record; check the tracking server and artifact store "
            "(recsys doctor) and run `recsys forget` again to complete it"
        ) from exc
    return out


def logged_model_id(mv: Any) -> str | None:
    """The id of the logged model (MLflow 3) behind model version ``mv``, if any."""
    model_id = getattr(mv, "model_id", None)
    source = str(mv.source or "")
    if not model_id and source.startswith("models:/m-"):
        model_id = source.removeprefix("models:/").split("/")[0]
    return model_id or None


def _roots(client: Any, mv: Any) -> list[str]:
    roots = []
    if mv.run_id:
        roots.append(client.get_run(mv.run_id).info.artifact_uri)
    model_id = logged_model_id(mv)
    if model_id:
        roots.append(client.get_logged_model(model_id).artifact_location)
    return list(dict.fromkeys(roots))


def _walk(repo: Any, path: str | None = None) -> Iterator[tuple[str, str]]:
    """(kind, path) of the saved models ("model"), Parquet tables ("table") and input examples
    ("example") under ``path``."""
    entries = repo.list_artifacts(path)
    names = {Path(e.path).name for e in entries if not e.is_dir}
    if _MODEL_FILES <= names:
        yield "model", path or ""
        return  # the members of a composite are rewritten with it
    for e in entries:
        if e.is_dir:
            yield from _walk(repo, e.path)
        elif e.path.endswith(".parquet") and not e.path.endswith("_factors.parquet"):
            yield "table", e.path
        elif Path(e.path).name in _EXAMPLE_FILES:
            yield "example", e.path


def _forget_in_version(client: Any, mv: Any, users: list[str], staging: Path) -> VersionRewrite:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from recsys_core.tracking.model_store import STATE_PATH
    from recsys_core.tracking.state_digest import DIGEST_TAG, state_digest

    result = VersionRewrite(mv.name, str(mv.version))
    run_root = client.get_run(mv.run_id).info.artifact_uri if mv.run_id else None
    for root in _roots(client, mv):
        repo = get_artifact_repository(root)
        for kind, path in _walk(repo):
            stage = staging / hashlib.sha256(f"{root}/{path}".encode()).hexdigest()[:24]
            count = _stage(repo, kind, path, users, stage)
            if count:
                if root == run_root and kind == "model" and path == STATE_PATH:
                    # the served state's new digest, recorded before the upload: a failure in
                    # between leaves a version the service refuses (never a changed state it
                    # accepts), and a re-run uploads the staged copy that matches it
                    client.set_model_version_tag(
                        mv.name, mv.version, DIGEST_TAG, state_digest(stage / "files")
                    )
                _upload(repo, kind, path, stage)
                result.folders.append(path)
                if kind == "model":
                    result.users_removed += count
                else:
                    result.rows_removed += count
    if result.users_removed:
        before = int((mv.tags or {}).get(REWRITTEN_TAG, 0) or 0)
        client.set_model_version_tag(
            mv.name, mv.version, REWRITTEN_TAG, str(before + result.users_removed)
        )
        log.info(
            "%s version %s: %d user(s) removed from %s",
            mv.name,
            mv.version,
            result.users_removed,
            ", ".join(result.folders),
        )
    return result


def _stage(repo: Any, kind: str, path: str, users: list[str], stage: Path) -> int:
    """Rewrite ``path`` into ``stage`` (marked ready); how many users/rows were removed."""
    ready = stage / "ready"
    if ready.exists():  # a previous run rewrote it but could not upload it
        return int(json.loads(ready.read_text())["count"])
    with tempfile.TemporaryDirectory(prefix="recsys-forget-") as tmp:
        local = Path(repo.download_artifacts(path, tmp))
        if kind == "model":
            count = rewrite_state(local, users)
        elif kind == "example":
            count = rewrite_example(local, users)
        else:
            count = rewrite_table(local, users)
        if count:
            if stage.exists():
                shutil.rmtree(stage)
            stage.mkdir(parents=True)
            if kind == "model":
                shutil.move(str(local), stage / "files")
            else:  # the folder to upload holds the one table or example
                (stage / "files").mkdir()
                shutil.move(str(local), stage / "files" / local.name)
            ready.write_text(json.dumps({"count": count, "path": path}))
    return count


def _upload(repo: Any, kind: str, path: str, stage: Path) -> None:
    target = path if kind == "model" else str(Path(path).parent)
    repo.log_artifacts(str(stage / "files"), None if target in ("", ".") else target)
    shutil.rmtree(stage)
