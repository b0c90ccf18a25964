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
    s.train.rename(columns={"user": "userId", "item": "movieId"}).to_csv(
        root / "train.csv", index=False
    )
    # the test file in u.data's format: tab-separated, no header
    s.test.to_csv(root / "test.tsv", sep="\t", header=False, index=False)
    return root, s


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_evaluate_prints_one_json_object_and_writes_csvs(files):
    root, s = files
    res = _invoke(
        "evaluate",
        "--train",
        root / "train.csv",
        "--test",
        root / "test.tsv",
        "--model",
        "sgd-mf",
        "--param",
        "epochs=5",
        "--param",
        "factors=8",
        "-k",
        5,
        "--predictions-out",
        root / "pred.csv",
        "--recommendations-out",
        root / "recs.csv",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in (
        "rmse",
        "mae",
        "precision_at_5",
        "recall_at_5",
        "ndcg_at_5",
        "map_at_5",
        "hit_rate_at_5",
        "coverage_at_5",
        "fit_seconds",
        "cold_users",
        "cold_items",
    ):
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


def test_evaluate_prints_warm_cold_and_all_users_side_by_side(files, tmp_path):
    root, s = files
    # a time split of the same rows: users whose first rating comes after the cutoff are cold
    t = split(pd.concat([s.train, s.test]), SplitConfig(strategy="time"))
    t.train.to_csv(tmp_path / "train.csv", index=False)
    t.test.to_csv(tmp_path / "test.csv", index=False)
    args = (
        "evaluate",
        "--train",
        tmp_path / "train.csv",
        "--test",
        tmp_path / "test.csv",
        "--model",
        "bias",
        "-k",
        5,
    )
    out = json.loads(_invoke(*args, "--json").stdout)
    warm = t.test["user"].isin(set(t.train["user"]))
    assert (out["warm/rows"], out["cold/rows"]) == (int(warm.sum()), int((~warm).sum()))
    assert out["cold/users"] == t.test.loc[~warm, "user"].nunique() > 0
    res = _invoke(*args)
    assert res.exit_code == 0, res.output
    lines = [" ".join(line.strip("│┃ ").split()) for line in res.stdout.splitlines()]
    assert "test users ┃ warm ┃ cold ┃ all" in lines
    assert f"rows │ {out['warm/rows']:,} │ {out['cold/rows']:,} │ {out['all/rows']:,}" in lines
    assert f"rmse │ {out['warm/rmse']:.4f} │ {out['cold/rmse']:.4f} │ {out['rmse']:.4f}" in lines
    assert (
        f"ndcg_at_5 │ {out['warm/ndcg_at_5']:.4f} │ {out['cold/ndcg_at_5']:.4f} │ "
        f"{out['ndcg_at_5']:.4f}"
    ) in lines
    assert "warm: test users with training rows; cold: without" in res.stdout


def test_models_json_lists_names_and_defaults():
    res = _invoke("models", "--json")
    assert res.exit_code == 0
    info = {m["name"]: m for m in json.loads(res.stdout)}
    assert {"sgd-mf", "bias", "popularity"} <= set(info)
    params = {p["name"]: p["default"] for p in info["sgd-mf"]["params"]}
    assert params["factors"] == 100 and params["lr"] == 0.007 and params["epochs"] == 30
    # the serving roles each family can fill, with their champion aliases
    assert info["sgd-mf"]["roles"] == {"ranking": "champion-ranking", "rating": "champion-rating"}
    assert info["ease"]["roles"] == info["popularity"]["roles"] == {"ranking": "champion-ranking"}
    text = _invoke("models")
    assert "roles: ranking (champion-ranking)" in text.stdout
    assert "roles: ranking (champion-ranking), rating (champion-rating)" in text.stdout


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


def test_evaluate_reads_s3_objects(files, monkeypatch, s3_endpoint):
    import boto3

    root, s = files
    endpoint = s3_endpoint
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="cli-data")
    client.upload_file(str(root / "train.csv"), "cli-data", "train.csv")
    client.upload_file(str(root / "test.tsv"), "cli-data", "test.tsv")
    res = _invoke(
        "evaluate",
        "--train",
        "s3://cli-data/train.csv",
        "--test",
        "s3://cli-data/test.tsv",
        "--model",
        "bias",
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_test"] == len(s.test)
    missing = _invoke(
        "evaluate", "--train", "s3://cli-data/nope.csv", "--test", "s3://cli-data/test.tsv"
    )
    assert missing.exit_code != 0
    assert "s3://cli-data/nope.csv does not exist" in " ".join(missing.output.split())


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_evaluate_json_equals_the_library_on_the_same_files(files):
    from recsys_core.data import collect
    from recsys_core.evaluation import evaluate
    from recsys_core.features import Interactions
    from recsys_core.models.registry import create

    root, _ = files
    args = ["--train", root / "train.csv", "--test", root / "test.tsv", "-k", 7]
    res = _invoke(
        "evaluate",
        *args,
        "--model",
        "sgd-mf",
        "--param",
        "epochs=4",
        "--param",
        "factors=6",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = _strict_json(res.stdout)
    train = collect(str(root / "train.csv")).interactions
    test = collect(str(root / "test.tsv")).interactions
    rec = create("sgd-mf", {"epochs": 4, "factors": 6}).fit(Interactions.from_frame(train))
    expected = evaluate(rec, train, test, k=7).metrics
    assert set(expected) <= set(out)
    for name, value in expected.items():
        assert out[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert out["rmse"] > 0 and out["ndcg_at_7"] > 0  # a real score, not a placeholder
    assert (out["k"], out["k_requested"], out["n_train"]) == (7, 7, len(train))


def test_evaluate_rating_metrics_only(files):
    root, _ = files
    args = ["--train", root / "train.csv", "--test", root / "test.tsv", "-p", "epochs=3"]
    full = _strict_json(_invoke("evaluate", *args, "--json").stdout)
    res = _invoke("evaluate", *args, "--metrics", "rating", "--json")
    assert res.exit_code == 0, res.output
    rating = _strict_json(res.stdout)
    assert "ndcg_at_10" in full and not any("_at_" in name for name in rating)
    assert {n: v for n, v in full.items() if "_at_" not in n and n != "fit_seconds"} == {
        n: v for n, v in rating.items() if n != "fit_seconds"
    }
    table = _invoke("evaluate", *args, "--metrics", "rating")
    assert table.exit_code == 0 and "rmse" in table.stdout and "ndcg" not in table.stdout
    files_only = args[:4]
    for refused, message in (
        (["--model", "popularity"], "does not predict ratings"),
        (["--recommendations-out", root / "recs-rating.csv"], "--metrics all"),
    ):
        res = _invoke("evaluate", *files_only, "--metrics", "rating", *refused)
        assert res.exit_code == 2 and message in res.output, res.output


def test_evaluate_clips_k_to_the_catalogue_with_a_note(files):
    root, s = files
    n_items = s.train["item"].nunique()
    res = _invoke(
        "evaluate",
        "--train",
        root / "train.csv",
        "--test",
        root / "test.tsv",
        "--model",
        "bias",
        "-k",
        999,
    )
    assert res.exit_code == 0, res.output
    assert (
        f"note: k=999 is larger than the {n_items} item(s) of the training data; using "
        f"k={n_items}" in " ".join(res.output.split())
    )
    res = _invoke(
        "evaluate",
        "--train",
        root / "train.csv",
        "--test",
        root / "test.tsv",
        "--model",
        "bias",
        "-k",
        999,
        "--json",
    )
    out = _strict_json(res.stdout)
    assert (out["k"], out["k_requested"]) == (n_items, 999)
    assert f"ndcg_at_{n_items}" in out


def test_evaluate_checks_output_paths_before_fitting(files, tmp_path, monkeypatch):
    from recsys_core.models.baselines import Bias

    fitted = []
    monkeypatch.setattr(Bias, "fit", lambda self, *a, **kw: fitted.append(1) or self)
    root, _ = files
    res = _invoke(
        "evaluate",
        "--train",
        root / "train.csv",
        "--test",
        root / "test.tsv",
        "--model",
        "bias",
        "--predictions-out",
        tmp_path / "missing" / "p.csv",
    )
    assert res.exit_code == 2 and "does not exist" in res.output
    assert fitted == [] and not (tmp_path / "missing").exists()


def test_evaluate_duplicates_policy_is_the_collect_policy(tmp_path):
    rows = "user,item,rating,timestamp\n" + "".join(
        f"{u},{i},{1 + (u + i) % 5},{u * 10 + i}\n" for u in range(12) for i in range(8)
    )
    (tmp_path / "train.csv").write_text(rows + "0,0,5,1000\n0,0,1,900\n")
    (tmp_path / "test.csv").write_text(rows)
    base = [
        "evaluate",
        "--train",
        tmp_path / "train.csv",
        "--test",
        tmp_path / "test.csv",
        "--model",
        "bias",
        "--json",
    ]
    latest = _strict_json(_invoke(*base).stdout)
    mean = _strict_json(_invoke(*base, "--duplicates", "mean").stdout)
    assert latest["n_train"] == mean["n_train"] == 96  # one row per pair
    assert latest["rmse"] != mean["rmse"]  # (0, 0) is 5 (latest) or (1 + 5 + 1) / 3 (mean)
    noted = _invoke(*base[:-1])
    assert (
        "note: 2 repeated (user, item) row(s) of the train file resolved by the duplicates "
        "policy 'latest'" in " ".join(noted.output.split())
    )


def test_finite_or_none_keeps_json_strict():
    from recsys_cli.evaluate import _finite_or_none

    assert [_finite_or_none(v) for v in (float("nan"), float("inf"), 0.5, 3, "x")] == [
        None,
        None,
        0.5,
        3,
        "x",
    ]


def test_recommend_refuses_a_huge_k_before_touching_the_registry(tmp_path, monkeypatch):
    # the champion path itself (model_state, clipping k to the catalogue) runs in the flow tests
    monkeypatch.chdir(tmp_path)
    huge = _invoke("recommend", "--user", "1", "-k", 10**9)
    assert huge.exit_code == 2
    assert "k=1000000000 is larger than the maximum of 1000" in " ".join(huge.output.split())
    assert not (tmp_path / ".recsys").exists()
