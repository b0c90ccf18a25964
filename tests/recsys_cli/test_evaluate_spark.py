"""``recsys evaluate --engine spark``: Spark reads the Parquet files and gives the figures of the
local evaluation; what it cannot do is refused before any fit (one shared local[2] session)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.data.synthetic import config_for, generate
from recsys_core.features.splits import SplitConfig, split

runner = CliRunner()
SGD = ("--model", "sgd-mf", "--param", "epochs=3", "--param", "factors=4", "-k", "5")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-spark")
    s = split(generate(config_for("tiny")).interactions, SplitConfig(strategy="random", seed=1))
    names = {"user": "userId", "item": "movieId"}  # read through the column mapping
    s.train.rename(columns=names).to_parquet(root / "train.parquet", index=False)
    s.test.rename(columns=names).to_parquet(root / "test.parquet", index=False)
    s.train.to_csv(root / "train.csv", index=False)
    return root, s


def _evaluate(root, *args, test="test.parquet"):
    return runner.invoke(
        app,
        [
            "evaluate",
            "--train",
            str(root / "train.parquet"),
            "--test",
            str(root / test),
            "--columns",
            "user=userId,item=movieId",
            *map(str, args),
        ],
    )


@pytest.mark.slow
def test_spark_engine_gives_the_local_figures(files):
    root, s = files
    local = _evaluate(root, *SGD, "--engine", "local", "--json")
    spark = _evaluate(root, *SGD, "--engine", "spark", "--json")
    assert local.exit_code == 0, local.output
    assert spark.exit_code == 0, spark.output
    a, b = json.loads(local.stdout), json.loads(spark.stdout)
    assert (a["engine"], b["engine"]) == ("local", "spark")
    assert b["n_test"] == len(s.test) and b["cold_users"] == a["cold_users"]
    metrics = [m for m in a if m.endswith(("rmse", "mae", "_at_5"))]
    assert len([m for m in metrics if "/" not in m]) == 8
    # the same figures for the warm users (a random split has few cold ones), and the
    # populations' sizes
    metrics += [m for m in a if m.endswith(("/users", "/rows", "/share"))]
    assert {"warm/rmse", "warm/ndcg_at_5", "cold/users", "cold_items/share"} <= set(metrics)
    for metric in metrics:
        assert b[metric] == pytest.approx(a[metric], abs=1e-6), metric
    # auto scores a model that is not a Spark model locally
    assert json.loads(_evaluate(root, *SGD, "--json").stdout)["engine"] == "local"


def test_what_the_spark_engine_cannot_do_is_refused(files, tmp_path):
    root, s = files
    bad = _evaluate(root, *SGD, "--engine", "gpu")
    assert bad.exit_code == 2 and "'gpu' is not one of" in bad.output
    csv = runner.invoke(
        app,
        [
            "evaluate",
            "--train",
            str(root / "train.csv"),
            "--test",
            str(root / "test.parquet"),
            "--engine",
            "spark",
            *SGD,
        ],
    )
    assert csv.exit_code == 2
    assert "train.csv' is not Parquet" in " ".join(csv.output.split())
    pop = _evaluate(root, "--model", "popularity", "--engine", "spark")
    assert pop.exit_code == 2 and "'popularity' is not one" in " ".join(pop.output.split())
    out = _evaluate(root, *SGD, "--engine", "spark", "--predictions-out", tmp_path / "p.csv")
    assert out.exit_code == 2 and "need every row" in " ".join(out.output.split())
    # a pair rated twice: the local reading resolves it, Spark scores rows as they are
    twice = s.test.rename(columns={"user": "userId", "item": "movieId"})
    pd.concat([twice, twice.head(1)]).to_parquet(root / "twice.parquet", index=False)
    dup = _evaluate(root, *SGD, "--engine", "spark", test="twice.parquet")
    assert dup.exit_code == 2 and "1 (user, item) pair(s) more than once" in " ".join(
        dup.output.split()
    )
