"""The command line: evaluate as specified, models listing, and clear errors on bad input."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.data.synthetic import config_for, generate
from recsys_core.features.splits import SplitConfig, split

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    frame = generate(config_for("tiny")).interactions
    s = split(frame, SplitConfig(strategy="random", seed=1))
    s.train.rename(columns={"user": "userId", "item": "movieId"}).to_csv(root / "train.csv",
                                                                         index=False)
    # the test file in u.data's format: tab-separated, no header
    s.test.to_csv(root / "test.tsv", sep="\t", header=False, index=False)
    return root, s


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_evaluate_prints_one_json_object_and_writes_csvs(files):
    root, s = files
    res = _invoke("evaluate", "--train", root / "train.csv", "--test", root / "test.tsv",
                  "--model", "sgd-mf", "--param", "epochs=5", "--param", "factors=8", "-k", 5,
                  "--predictions-out", root / "pred.csv",
                  "--recommendations-out", root / "recs.csv", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("rmse", "mae", "precision_at_5", "recall_at_5", "ndcg_at_5", "map_at_5",
                "hit_rate_at_5", "coverage_at_5", "fit_seconds", "cold_users", "cold_items"):
        assert key in out
    assert out["params"]["epochs"] == 5 and out["n_test"] == len(s.test)
    pred = pd.read_csv(root / "pred.csv", dtype={"user": str, "item": str})
    assert list(pred.columns) == ["user", "item", "rating", "prediction"]
    assert len(pred) == len(s.test)
    recs = pd.read_csv(root / "recs.csv", dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert recs.groupby("user").size().max() == 5
    assert set(recs["user"]) == set(s.test["user"])
    seen = set(zip(s.train["user"], s.train["item"], strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"], strict=True))


def test_models_json_lists_names_and_defaults():
    res = _invoke("models", "--json")
    assert res.exit_code == 0
    info = {m["name"]: m for m in json.loads(res.stdout)}
    assert {"sgd-mf", "bias", "popularity"} <= set(info)
    params = {p["name"]: p["default"] for p in info["sgd-mf"]["params"]}
    assert params["factors"] == 100 and params["lr"] == 0.005 and params["epochs"] == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "mf"], "unknown model 'mf'; available:"),
        (["--param", "speed=3"], "unknown parameter(s) 'speed'"),
        (["--param", "factors=-2"], "factors"),
        (["--param", "lr=0"], "lr"),
        (["-k", "-1"], "k must be a positive integer"),
        (["--param", "epochs"], "expected key=value"),
    ],
)
def test_evaluate_rejects_bad_arguments(files, args, message):
    root, _ = files
    res = _invoke("evaluate", "--train", root / "train.csv", "--test", root / "test.tsv", *args)
    assert res.exit_code != 0
    assert message in " ".join(res.output.split())


def test_evaluate_rejects_bad_files(files, tmp_path):
    root, _ = files
    missing = _invoke("evaluate", "--train", tmp_path / "nope.csv", "--test", root / "test.tsv")
    assert missing.exit_code != 0 and "file not found" in missing.output
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01\x02garbage")
    junk = _invoke("evaluate", "--train", tmp_path / "junk.bin", "--test", root / "test.tsv")
    assert junk.exit_code != 0 and "not a text table" in junk.output
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(tmp_path / "cols.csv", index=False)
    cols = _invoke("evaluate", "--train", tmp_path / "cols.csv", "--test", root / "test.tsv")
    assert cols.exit_code != 0 and "no 'user'" in " ".join(cols.output.split())
    (tmp_path / "empty.csv").write_text("")
    empty = _invoke("evaluate", "--train", tmp_path / "empty.csv", "--test", root / "test.tsv")
    assert empty.exit_code != 0 and "empty" in empty.output


def test_train_rejects_unknown_model_before_any_flow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _invoke("train", "--model", "nope")
    assert res.exit_code == 2 and "unknown model 'nope'" in res.output
    assert not (tmp_path / ".recsys").exists()
    res = _invoke("train", "-k", "0")
    assert res.exit_code == 2 and "k must be a positive integer" in res.output


def test_evaluate_reads_s3_objects(files, monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    root, s = files
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(key, value)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="data")
        client.upload_file(str(root / "train.csv"), "data", "train.csv")
        client.upload_file(str(root / "test.tsv"), "data", "test.tsv")
        res = _invoke("evaluate", "--train", "s3://data/train.csv", "--test", "s3://data/test.tsv",
                      "--model", "bias", "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["n_test"] == len(s.test)
        missing = _invoke("evaluate", "--train", "s3://data/nope.csv", "--test",
                          "s3://data/test.tsv")
        assert missing.exit_code != 0
        assert "s3://data/nope.csv does not exist" in " ".join(missing.output.split())
    finally:
        server.stop()
