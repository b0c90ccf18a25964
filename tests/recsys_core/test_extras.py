"""The training loop needs no extra; a part whose extra is missing says what to install."""

import subprocess
import sys

import pytest

from recsys_core.exceptions import ConfigError, MissingExtraError
from recsys_core.extras import EXTRAS, require

# (torch is not among them: scipy looks for a torch in sys.modules, and None there breaks it;
# test_the_neural_extra_says_to_take_pytorchs_cpu_build hides it once scipy is loaded)
EXTRA_MODULES = ("pyspark", "optuna", "prefect_dask", "distributed", "fastapi_offline")


@pytest.mark.slow
def test_the_training_path_runs_without_the_extras():
    """As in an environment of `make run`: the extras' modules cannot be imported (MLflow's own
    optional imports of pyspark then fail quietly, as they do there)."""
    code = (
        "import sys\n"
        f"for m in {EXTRA_MODULES!r}: sys.modules[m] = None\n"
        "import recsys_cli.main, flows.training, tasks.train, tasks.evaluate\n"
        "from recsys_core.data.synthetic import config_for, generate\n"
        "from recsys_core.features import Interactions\n"
        "from recsys_core.models import available, create\n"
        "[create(name) for name in available()]\n"
        "data = Interactions.from_frame(generate(config_for('tiny')).interactions)\n"
        "print(create('ease').fit(data).recommend(data.users.ids[:1], 3).shape[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "3", out.stdout


@pytest.mark.parametrize(
    "module, extra",
    [
        ("pyspark", "spark"),
        ("optuna", "tune"),
        ("fastapi_offline", "service"),
        ("torch", "neural"),
    ],
)
def test_a_missing_extra_says_what_to_install(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without it does
    with pytest.raises(MissingExtraError) as info:
        require(module, extra)
    text = str(info.value)
    assert f"the {extra!r} extra, which is not installed" in text
    assert f"pip install 'recsys[{extra}]'" in text and "make install" in text
    assert EXTRAS[extra] in text
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ImportError)


def test_spark_without_its_extra_fails_with_the_message(monkeypatch):
    from recsys_core.spark.session import spark_session

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(MissingExtraError, match=r"recsys\[spark\]"):
        spark_session()


def test_a_study_without_its_extra_fails_with_the_message(monkeypatch):
    from recsys_core.tuning.objective import open_study

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"recsys\[tune\]"):
        open_study("s", "sqlite:///unused.db", "minimize")


def test_an_installed_extra_is_imported():
    assert require("optuna", "tune").__name__ == "optuna"


def test_the_neural_extra_says_to_take_pytorchs_cpu_build(tiny_interactions, monkeypatch):
    """PyPI's default torch wheel for Linux is a CUDA build of several GB: the message gives the
    CPU build's command, and the model is still listed."""
    from recsys_core.models import available, create

    monkeypatch.setitem(sys.modules, "torch", None)
    assert "mult-vae" in available()
    with pytest.raises(MissingExtraError) as info:
        create("mult-vae").fit(tiny_interactions)
    text = str(info.value)
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    assert "pip install 'recsys[neural]'" in text


@pytest.fixture
def tiny_interactions():
    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.features import Interactions

    return Interactions.from_frame(generate(config_for("tiny")).interactions)
