"""Spark ALS: quality on the fixture, Spark's own evaluation, the CLI, and settings that fail
fast. One SparkSession (``local[2]``, tests/conftest.py) serves every test of the run."""

import json
import socket
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models import create
from recsys_core.spark import session as spark_session_module
from recsys_core.spark.session import SparkSettings, check_master, java_executable, spark_session


def test_explicit_quality(quality):
    # measured on the fixture: RMSE 0.818 against the bias baseline's 0.928; 1.128 zeroed
    # (the global mean alone)
    model = quality.rating(
        "spark-als", {}, beats_bias_by=0.08, zeroed=("user_factors_", "item_factors_")
    )
    assert model.user_factors_.shape == (model.n_users, model.config.rank)
    assert not np.any(model.user_bias_) and not np.any(model.item_bias_)


def test_implicit_quality(quality):
    # measured on the fixture: NDCG@10 0.404 against popularity's 0.144 (2.8 x)
    quality.ranking("spark-als-implicit", {}, times_popularity=2.2)


def test_spark_evaluation_agrees_with_the_collected_factors(tiny):
    test = Interactions.from_frame(tiny.test, users=tiny.data.users, items=tiny.data.items)
    model = create("spark-als", {"maxIter": 3}).fit(tiny.data, eval_data=test)
    (last,) = model.history_
    assert last["epoch"] == 3
    # Spark's transform + RegressionEvaluator against numpy on the collected factors
    assert last["spark_val_rmse"] == pytest.approx(last["val_rmse"], rel=1e-5)
    assert 0.5 < last["val_rmse"] < 2.0


def test_evaluate_command_runs_spark_als(tiny, tmp_path):
    tiny.train.to_csv(tmp_path / "train.csv", index=False)
    tiny.test.to_csv(tmp_path / "test.csv", index=False)
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--model",
            "spark-als",
            "--param",
            "rank=4",
            "--param",
            "maxIter=3",
            "-k",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert 0.5 < out["rmse"] < 2.0 and 0.0 <= out["ndcg_at_5"] <= 1.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_master_fails_fast_naming_the_setting(tiny, monkeypatch):
    master = f"spark://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("RECSYS_SPARK_MASTER", master)
    monkeypatch.setenv("RECSYS_SPARK_CONNECT_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"RECSYS_SPARK_MASTER") as err:
        create("spark-als", {"maxIter": 1}).fit(tiny.data)
    assert time.monotonic() - started < 10
    assert master in str(err.value) and "cannot be reached" in str(err.value)


@pytest.mark.parametrize("master", ["mesos://host:5050", "spark://", "k8s://https://:x"])
def test_malformed_master_is_a_config_error(master):
    with pytest.raises(ConfigError, match="RECSYS_SPARK_MASTER"):
        check_master(SparkSettings(master=master))


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[4,2]"])
def test_local_masters_need_no_connection(master):
    assert SparkSettings(master=master).is_local
    check_master(SparkSettings(master=master))


def test_missing_java_names_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="openjdk-17-jre-headless"):
        java_executable()
    # checked before any session is touched: the shared one stays up
    before = spark_session_module._session
    with pytest.raises(ConfigError, match="openjdk-17-jre-headless"):
        spark_session(SparkSettings(master="local[1]"))
    assert spark_session_module._session is before
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="JAVA_HOME"):
        java_executable()


def test_bad_settings_are_config_errors(monkeypatch):
    monkeypatch.setenv("RECSYS_SPARK_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="RECSYS_SPARK_CONNECT_TIMEOUT"):
        SparkSettings.from_env()
