"""The served model: any ``Recommender`` wrapped as an MLflow pyfunc.

Input: a frame with a ``user`` column and, to score pairs, an ``item`` column.

* ``mode="predict"`` (or ``auto`` with an ``item`` column): returns the frame with a
  ``prediction`` column (rating models).
* ``mode="recommend"`` (or ``auto`` without ``item``): returns ``user, rank, item, score`` with
  the top ``k`` unseen items per user; unknown users get the most popular items.

The artifact ``model_dir`` holds the model as saved by ``Recommender.save`` (factors, biases,
id vocabularies, training matrix); the wrapper is logged as code (``pyfunc_code.py``, MLflow's
models from code), so loading a version unpickles nothing; the library's own code travels with
it (``code_paths``), and its pip requirements are the core libraries and what its families
declare they import (:func:`pip_requirements`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - the tracking corner needs mlflow
    PythonModel = object  # type: ignore[misc,assignment]

from recsys_core.exceptions import TrackingError
from recsys_core.models.base import Recommender

ARTIFACT_KEY = "model_dir"


class RecommenderPyfunc(PythonModel):
    """MLflow pyfunc wrapper of a fitted ``Recommender``."""

    def __init__(self) -> None:
        self.model: Recommender | None = None

    def load_context(self, context) -> None:
        self.model = Recommender.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        params = params or {}
        frame = pd.DataFrame(model_input)
        mode = params.get("mode", "auto")
        k = int(params.get("k", 10))
        if mode == "auto":
            mode = (
                "predict"
                if "item" in frame.columns and frame["item"].notna().all()
                else ("recommend")
            )
        if mode == "predict":
            preds = self.model.predict(frame["user"], frame["item"])
            return frame[["user", "item"]].assign(prediction=preds)
        users = pd.unique(frame["user"].astype(str))
        return self.model.recommend(users, k)


def signature():
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "user"), ColSpec("string", "item", required=False)]),
        params=ParamSchema([ParamSpec("k", "long", 10), ParamSpec("mode", "string", "auto")]),
    )


CORE_REQUIREMENTS = (
    "mlflow",
    "numba",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "pydantic-settings",
    "python-dotenv",
    "scipy",
    "threadpoolctl",
)
"""What loading and scoring any saved model imports (recsys_core travels as code): the pyfunc
wrapper's MLflow, and the libraries of recsys_core's model, feature and settings modules."""


def pip_requirements(model_dir: str | Path) -> list[str]:
    """The pinned packages (``name==version``) a pyfunc environment needs for the saved model in
    ``model_dir``: :data:`CORE_REQUIREMENTS` and what each family in the folder (the model and
    the members or retrievers saved beside it) declares it needs to load and score
    (:meth:`Recommender.serving_requirements`: LightGBM for ``rerank`` and a blend with the
    ``lightgbm`` stacker; ``mult-vae`` scores in numpy, so no PyTorch). Read from the saved
    ``model.json`` files: nothing is loaded. A package that is not installed here is listed
    without a version."""
    from importlib.metadata import PackageNotFoundError, version

    from recsys_core.models.registry import get_model_class

    names = set(CORE_REQUIREMENTS)
    for meta in sorted(Path(model_dir).rglob("model.json")):
        saved = json.loads(meta.read_text())
        cls = get_model_class(saved["model"])
        names.update(cls.serving_requirements(saved.get("config") or {}))
    pins = []
    for name in sorted(names):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


EXAMPLE_USER = "example-user"
"""The user of every logged model's input example: no real user id is written beside a model
(MLflow stores the example as ``input_example.json`` and ``serving_input_example.json``, which
forgetting would otherwise have to find); an unknown user is scored like any cold user."""


def example(model_dir: str | Path, n: int = 3) -> pd.DataFrame:
    """MLflow's input example, in the mode the model answers (no model load): for a rating
    model a few (user, item) pairs of the synthetic user :data:`EXAMPLE_USER` with known items
    of the saved vocabulary; for a ranking-only model that user alone, asking for a list (pairs
    would ask it for ratings it cannot predict, and MLflow's check of the example would fail)."""
    import json

    from recsys_core.features.ids import IdVocab
    from recsys_core.models.registry import get_model_class

    folder = Path(model_dir)
    name = json.loads((folder / "model.json").read_text())["model"]
    if not get_model_class(name).capabilities.predicts_ratings:
        return pd.DataFrame({"user": [EXAMPLE_USER]})
    items = IdVocab.load(folder / "item_ids.json").ids[:n].astype(str)
    return pd.DataFrame({"user": [EXAMPLE_USER] * len(items), "item": items})


def log_saved(
    model_dir: str | Path, run_id: str | None = None, input_example: pd.DataFrame | None = None
):
    """Log the model saved in ``model_dir`` as a pyfunc of run ``run_id``; returns ``ModelInfo``.

    The folder written by ``Recommender.save`` becomes the model's artifact as it is: nothing is
    loaded or saved again. With ``run_id`` no active run is needed, so the run stays open for the
    flow; without it the active run is used.

    The logged model belongs to the run's experiment, and its artifacts lie under that
    experiment's artifact location: ``Model.log`` given only a run id would create it in the
    process's active experiment (MLflow's default experiment ``0``, whose artifacts go to the
    ``./mlruns`` of whichever folder created the store).
    """
    import mlflow
    from mlflow.models import Model

    import recsys_core

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise TrackingError("no run to log the model in: pass run_id or start a run first")
        run_id = active.info.run_id
    run = mlflow.MlflowClient().get_run(run_id)
    logged = mlflow.initialize_logged_model(
        name="model",
        source_run_id=run_id,
        experiment_id=run.info.experiment_id,
        params=dict(run.data.params),
    )
    return Model.log(
        artifact_path=None,
        name="model",
        flavor=mlflow.pyfunc,
        run_id=run_id,
        model_id=logged.model_id,
        # models from code: loading runs pyfunc_code.py, nothing is unpickled
        python_model=str(Path(__file__).with_name("pyfunc_code.py")),
        artifacts={ARTIFACT_KEY: str(model_dir)},
        code_paths=[str(Path(recsys_core.__file__).parent)],
        signature=signature(),
        input_example=input_example if input_example is not None else example(model_dir),
        pip_requirements=pip_requirements(model_dir),
    )


def log_model(model: Recommender, workdir: Path, input_example: pd.DataFrame | None = None):
    """Save ``model`` under ``workdir`` and log it as a pyfunc in the active run."""
    model_dir = model.save(Path(workdir) / "recommender")
    return log_saved(model_dir, None, input_example)


def load_recommender(model_uri: str) -> Recommender:
    """The ``Recommender`` inside a logged pyfunc model (``models:/name@champion-ranking``...)."""
    import mlflow

    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
