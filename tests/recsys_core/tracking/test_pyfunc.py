"""The served pyfunc: logged from a saved model into its run's experiment, loaded back as the
same ``Recommender``."""

import importlib.util
import json
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import TrackingError
from recsys_core.features import Interactions
from recsys_core.models import Recommender, create
from recsys_core.tracking import mlflow_run, pyfunc


def test_pyfunc_round_trip_predicts_like_the_model(store):
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    model = create("sgd-mf", {"epochs": 3, "factors": 4}).fit(data)
    run_id = mlflow_run.start_run("reg-test", "r")
    with mlflow.start_run(run_id=run_id):
        info = pyfunc.log_model(model, store / "m")
    loaded = pyfunc.load_recommender(info.model_uri)
    users, items = data.users.ids[:5], data.items.ids[:5]
    assert (loaded.predict(users, items) == model.predict(users, items)).all()


def test_a_saved_model_is_logged_into_its_runs_experiment(store, tiny_model_dir):
    run_id = mlflow_run.start_run("pyfunc-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)
    client = MlflowClient()
    run = client.get_run(run_id)
    logged = client.get_logged_model(info.model_id)
    assert logged.experiment_id == run.info.experiment_id
    assert logged.source_run_id == run_id
    # its artifacts lie with the run's, under the working folder's store, not in ./mlruns
    location = client.get_experiment(run.info.experiment_id).artifact_location
    assert location.startswith((store / mlflow_run.EMBEDDED_DIR).as_uri())
    assert logged.artifact_location.startswith(location)
    assert not (store / "mlruns").exists()
    assert run.info.status == "RUNNING"  # the run stays open for the flow
    users = Interactions.from_frame(generate(config_for("tiny")).interactions).users.ids[:5]
    expected = Recommender.load(tiny_model_dir).recommend(users, 3)
    got = pyfunc.load_recommender(info.model_uri).recommend(users, 3)
    assert got.equals(expected)


def test_the_logged_model_is_code_not_a_pickle(store, tiny_model_dir):
    # MLflow's models from code: loading runs pyfunc_code.py; no python_model.pkl to unpickle
    run_id = mlflow_run.start_run("pyfunc-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)
    folder = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(store / "dl")))
    assert (folder / "pyfunc_code.py").is_file()
    assert not list(folder.rglob("*.pkl"))
    flavor = info.flavors["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert "python_model" not in flavor  # the key of a pickled wrapper
    # a fresh process loads it from the downloaded folder alone, and scores
    code = (
        "import sys, mlflow; m = mlflow.pyfunc.load_model(sys.argv[1]); "
        "print(type(m.unwrap_python_model()).__name__, m.unwrap_python_model().model.name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["RecommenderPyfunc", Recommender.load(tiny_model_dir).name]


def test_logging_without_a_run_is_refused(store, tiny_model_dir):
    with pytest.raises(TrackingError, match="pass run_id or start a run"):
        pyfunc.log_saved(tiny_model_dir)


@pytest.fixture(scope="module")
def small():
    return Interactions.from_frame(generate(config_for("small", seed=5)).interactions)


def _names(requirements: list[str]) -> set[str]:
    return {r.partition("==")[0] for r in requirements}


# loads a saved model in a fresh interpreter, scores a known and an unknown user (and predicts
# their ratings where the model predicts ratings) and prints the top-level modules imported
_PROBE = """
import json, sys
from recsys_core.models.base import Recommender
model = Recommender.load(sys.argv[1])
users = [str(model.user_vocab_.ids[0]), "someone-new"]
model.recommend(users, 3)
if model.predicts_ratings:
    model.predict(users, [str(model.item_vocab_.ids[0])] * 2)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def _distributions(*args: str) -> set[str]:
    """recsys's declared dependencies whose modules ``python -c *args`` imports."""
    done = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    declared = {
        re.split(r"[\s\[;<>=!~]", req, maxsplit=1)[0].lower().replace("_", "-")
        for req in requires("recsys") or []
    }
    owners = packages_distributions()
    found = {d.lower().replace("_", "-") for m in modules for d in owners.get(m, [])}
    return found & declared


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    """A rerank over ease and popularity, blends with each stacker, a mult-vae (when PyTorch
    is here): saved once for the tests below."""
    root = tmp_path_factory.mktemp("saved")
    rerank = {
        "retrievers": [{"model": "ease"}, {"model": "popularity"}],
        "candidates": 20,
        "n_estimators": 5,
    }
    blend = {"members": [{"model": "bias"}], "trees": 5, "min_child_samples": 20}
    specs = {
        "rerank": ("rerank", rerank),
        "ridge": ("blend", blend),
        "trees": ("blend", {**blend, "stacker": "lightgbm"}),
    }
    if importlib.util.find_spec("torch") is not None:
        specs["vae"] = (
            "mult-vae",
            {"hidden_dims": (), "latent_dim": 4, "epochs": 2, "val_users": 0.0},
        )
    return {key: create(name, p).fit(small).save(root / key) for key, (name, p) in specs.items()}


def test_requirements_are_declared_by_the_families_in_the_saved_folder(saved):
    got = pyfunc.pip_requirements(saved["rerank"])
    assert all("==" in r for r in got)  # pinned
    assert {"lightgbm", "mlflow", "numpy", "scipy", "pandas"} <= _names(got)
    # its retriever alone needs no LightGBM
    assert "lightgbm" not in _names(pyfunc.pip_requirements(saved["rerank"] / "member_0"))
    assert "lightgbm" not in _names(pyfunc.pip_requirements(saved["ridge"]))
    assert "lightgbm" in _names(pyfunc.pip_requirements(saved["trees"]))
    if "vae" in saved:  # scored in numpy: served without PyTorch
        assert "torch" not in _names(pyfunc.pip_requirements(saved["vae"]))


@pytest.mark.parametrize("key", ["rerank", "trees", "vae"])
def test_what_loading_and_scoring_imports_is_declared(saved, key):
    if key not in saved:
        pytest.skip("mult-vae needs the neural extra (PyTorch)")
    declared = _names(pyfunc.pip_requirements(saved[key]))
    imported = _distributions(_PROBE, str(saved[key]))
    # what a declared package imports by itself when it is there (LightGBM: scikit-learn's
    # integration) comes with that package's own install, or is optional to it
    extras = sorted(declared - set(pyfunc.CORE_REQUIREMENTS))
    own = "; ".join(f"import {n}" for n in extras) or "pass"
    listing = (
        "import json, sys; print(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})))"
    )
    assert imported - _distributions(f"{own}; {listing}") <= declared


def test_the_logged_models_environment_lists_its_requirements(store, tiny_model_dir):
    run_id = mlflow_run.start_run("pyfunc-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)
    listed = Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().split()
    assert set(pyfunc.pip_requirements(tiny_model_dir)) <= set(listed)
