"""Bad inputs, one table: each gives its exit code and one ``error:`` line that names the problem.

Every case runs against ``recsys evaluate`` and, where the command has the option, ``recsys
train`` (whose file cases fail at the collect or validation step of the real flow, on the
shared Prefect test server and an embedded MLflow store). Exit codes: 2 bad usage or input,
3 a training run refused by validation.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.data.synthetic import config_for, generate
from recsys_core.features.splits import SplitConfig, split

runner = CliRunner()
HEADER = "user,item,rating,timestamp\n"


def _rows(bad_line: str, n: int = 150) -> str:
    """``n`` valid rows around one bad line (enough rows for validation's minimum of 100)."""
    good = [
        f"{u},{i},{1 + (u * 7 + i) % 5},{1_000 + u * 50 + i}"
        for u in range(15)
        for i in range(n // 15)
    ]
    return HEADER + "\n".join(good[:3] + [bad_line] + good[3:]) + "\n"


# name -> file content (str or bytes); None: the name is used as is (a folder, a missing file)
FILES = {
    "nan.csv": _rows("3,1,NaN,1200"),
    "inf.csv": _rows("3,1,inf,1200"),
    "bool.csv": HEADER + "1,1,True,5\n2,1,False,6\n",
    "words.csv": _rows("3,1,good,1200"),
    "scale.csv": _rows("3,1,9,1200"),
    "null_user.csv": _rows(",1,4,1200"),
    "when.csv": _rows("3,1,4,yesterday"),
    "header_only.csv": HEADER,
    "empty.csv": "",
    "binary.csv": b"\x00\x01\x02garbage",
    "cols.csv": "a,b\n1,2\n",
    "five.dat": "1::2::3::4::5\n",
    "repeats.csv": _rows("0,0,2,1"),  # rates (0, 0) again
}


@dataclass(frozen=True)
class Case:
    name: str
    evaluate: tuple | None  # arguments after the good --train/--test, or None: not applicable
    train: tuple | None  # arguments of train, or None: not applicable
    code: int  # for evaluate
    message: str
    train_code: int | None = None  # when train differs (validation refuses: 3)
    train_message: str | None = None

    @property
    def id(self) -> str:
        return self.name


CASES = [
    # data: NaN, inf, booleans, strings, off the scale, missing ids
    Case(
        "nan-rating",
        ("--train", "@nan.csv"),
        ("--source", "@nan.csv"),
        2,
        "column 'rating' of",
        3,
        "null rating values",
    ),
    Case(
        "inf-rating",
        ("--test", "@inf.csv"),
        ("--source", "@inf.csv"),
        2,
        "rating(s) not finite (inf), for example data row 4",
        3,
        "ratings outside [1.0, 5.0]",
    ),
    Case(
        "boolean-ratings",
        ("--train", "@bool.csv"),
        ("--source", "@bool.csv"),
        2,
        "column 'rating' of '@bool.csv' holds booleans, not numbers",
    ),
    Case(
        "word-ratings",
        ("--train", "@words.csv"),
        ("--source", "@words.csv"),
        2,
        "column 'rating' of '@words.csv' must be numeric; 1 value(s) are not, such as ['good']",
    ),
    Case(
        "rating-off-scale",
        ("--train", "@scale.csv"),
        ("--source", "@scale.csv"),
        2,
        "outside the rating scale [1.0, 5.0], for example data row 4",
        3,
        "ratings outside [1.0, 5.0]",
    ),
    Case(
        "rating-off-a-given-scale",
        ("--train", "@scale.csv", "--rating-max", "8"),
        None,
        2,
        "outside the rating scale [1.0, 8.0]",
    ),
    Case(
        "missing-user-id",
        ("--train", "@null_user.csv"),
        ("--source", "@null_user.csv"),
        2,
        "row(s) without a user id, for example data row 4",
        3,
        "null user values",
    ),
    Case(
        "word-timestamps",
        ("--train", "@when.csv"),
        ("--source", "@when.csv"),
        2,
        "column 'timestamp' of '@when.csv' must be numeric",
    ),
    Case(
        "refused-duplicates",
        ("--train", "@repeats.csv", "--duplicates", "refuse"),
        None,
        2,
        "rates the same (user, item) pair more than once: user '0' and item '0' on data rows 1, 4",
    ),
    # files: missing, folder, empty, binary, wrong columns, wrong layout
    Case(
        "missing-file",
        ("--train", "@nope.csv"),
        ("--source", "@nope.csv"),
        2,
        "file not found: '@nope.csv'",
    ),
    Case(
        "folder-as-file",
        ("--train", "@"),
        ("--source", "@"),
        2,
        "is a folder; give the path of a ratings file",
    ),
    Case("empty-file", ("--train", "@empty.csv"), ("--source", "@empty.csv"), 2, "is empty"),
    Case(
        "header-only",
        ("--test", "@header_only.csv"),
        ("--source", "@header_only.csv"),
        2,
        "'@header_only.csv' has no rows",
        3,
        "fewer than 100 rows",
    ),
    Case(
        "binary-file",
        ("--train", "@binary.csv"),
        ("--source", "@binary.csv"),
        2,
        "is not a text table (binary content)",
    ),
    Case(
        "wrong-columns",
        ("--train", "@cols.csv"),
        ("--source", "@cols.csv"),
        2,
        "has no 'user' and no 'item' column; its columns are ['a', 'b']",
    ),
    Case(
        "five-fields",
        ("--train", "@five.dat"),
        ("--source", "@five.dat"),
        2,
        "'::' rows with 5 fields; expected 3 or 4",
    ),
    Case(
        "mapping-without-equals",
        ("--columns", "user"),
        ("--source", "@repeats.csv", "--columns", "user"),
        2,
        "bad column mapping 'user'",
    ),
    Case(
        "mapping-to-a-missing-column",
        ("--columns", "rating=score"),
        ("--source", "@repeats.csv", "--columns", "rating=score"),
        2,
        "column 'score' (mapped to 'rating') is not in",
    ),
    Case(
        "unsupported-scheme-with-password",
        ("--train", "http://admin:hunter2@example.com/r.csv"),
        ("--source", "http://admin:hunter2@example.com/r.csv"),
        2,
        "unsupported source 'http://***@example.com/r.csv'",
    ),
    Case(
        "s3-uri-without-key",
        ("--train", "s3://bucket"),
        ("--source", "s3://bucket"),
        2,
        "an S3 URI needs a bucket and a key",
    ),
    Case(
        "silent-s3-endpoint",
        ("--train", "s3://data/r.csv"),
        ("--source", "s3://data/r.csv"),
        2,
        "cannot reach S3 at http://127.0.0.1:",
    ),
    # options
    Case(
        "unknown-model", ("--model", "mf"), ("--model", "mf"), 2, "unknown model 'mf'; available:"
    ),
    Case(
        "unknown-parameter",
        ("--param", "speed=3"),
        ("--param", "speed=3"),
        2,
        "unknown parameter(s) 'speed'",
    ),
    Case("negative-factors", ("--param", "factors=-2"), ("--param", "factors=-2"), 2, "factors"),
    Case(
        "parameter-without-value",
        ("--param", "epochs"),
        ("--param", "epochs"),
        2,
        "expected key=value",
    ),
    Case("k-zero", ("-k", "0"), ("-k", "0"), 2, "k must be a positive integer, got 0"),
    Case(
        "k-huge",
        ("-k", "1000000000"),
        ("-k", "1000000000"),
        2,
        "k=1000000000 is larger than the maximum of 1000",
        2,
        "1000",
    ),
    Case("k-not-a-number", ("-k", "ten"), ("-k", "ten"), 2, "Invalid value for '-k'"),
    Case("unknown-split", None, ("--split", "sideways"), 2, "split"),
    Case(
        "unknown-duplicates-policy",
        ("--duplicates", "first"),
        None,
        2,
        "Invalid value for '--duplicates'",
    ),
    Case(
        "inverted-scale",
        ("--rating-min", "5", "--rating-max", "1"),
        None,
        2,
        "the rating scale [5.0, 1.0] is not a finite interval",
    ),
    Case(
        "predictions-into-a-folder",
        ("--predictions-out", "@"),
        None,
        2,
        "--predictions-out '@' is a folder; give a file path",
    ),
    Case(
        "predictions-into-a-missing-folder",
        ("--predictions-out", "@no/such/dir/p.csv"),
        None,
        2,
        "the folder '@no/such/dir' does not exist",
    ),
    Case(
        "recommendations-into-a-folder",
        ("--recommendations-out", "@"),
        None,
        2,
        "--recommendations-out '@' is a folder",
    ),
    Case(
        "predictions-from-a-ranking-model",
        ("--model", "popularity", "--predictions-out", "@p.csv"),
        None,
        2,
        "model 'popularity' does not predict ratings; --predictions-out needs a rating model",
    ),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-inputs")
    frame = generate(config_for("tiny")).interactions
    s = split(frame, SplitConfig(strategy="random", seed=1))
    s.train.to_csv(folder / "train.csv", index=False)
    s.test.to_csv(folder / "test.csv", index=False)
    for name, content in FILES.items():
        path = folder / name
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return folder


@pytest.fixture(scope="module")
def silent_s3():
    """An S3 endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(32)
    held = []

    def accept():
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def env(root, silent_s3, monkeypatch):
    monkeypatch.chdir(root)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": silent_s3,
        "RECSYS_S3_READ_TIMEOUT": "0.3",
        "RECSYS_S3_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("RECSYS_MAX_K", "RECSYS_DEBUG", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    return root


def _args(args, root):
    # "@x" is a path in the case's folder; messages name it as given, so the cwd is that folder
    return [
        a.replace("@", "") if a.startswith("@") and a != "@" else ("." if a == "@" else a)
        for a in args
    ]


def _message(text: str, root) -> str:
    return text.replace("'@'", "'.'").replace("'@", "'")


def _check(res, code, message, root):
    out = " ".join(res.output.split())
    assert res.exit_code == code, res.output
    assert _message(message, root) in out, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    usage = "Invalid value" in message
    assert len(errors) == (0 if usage else 1), res.output  # click prints usage errors itself
    assert "hunter2" not in res.output


@pytest.mark.parametrize("case", [c for c in CASES if c.evaluate is not None], ids=Case.id.fget)
def test_evaluate_refuses(case, env):
    args = ["evaluate", "--train", "train.csv", "--test", "test.csv", "--model", "bias"]
    res = runner.invoke(app, args + _args(case.evaluate, env))
    _check(res, case.code, case.message, env)


def test_the_table_is_large_enough():
    assert len([c for c in CASES if c.evaluate]) >= 25
    assert len([c for c in CASES if c.train]) >= 25


@pytest.mark.parametrize("case", [c for c in CASES if c.train is not None], ids=Case.id.fget)
def test_train_refuses(case, env, prefect_server, monkeypatch):
    from recsys_core.data import incremental

    # bad input is never retried: the real collect (called by the collect task through
    # recsys_core.data.incremental) is called once per run (a retry would call it again after
    # RECSYS_IO_RETRY_DELAYS)
    calls = []
    real_collect = incremental.collect
    monkeypatch.setattr(
        incremental, "collect", lambda *a, **kw: calls.append(a) or real_collect(*a, **kw)
    )
    monkeypatch.setenv("RECSYS_IO_RETRIES", "3")
    monkeypatch.setenv("RECSYS_IO_RETRY_DELAYS", "0.1")
    args = [
        "train",
        "--model",
        "bias",
        "--registered-model",
        "badinputs",
        "--experiment",
        "badinputs",
        *_args(case.train, env),
    ]
    res = runner.invoke(app, args)
    _check(res, case.train_code or case.code, case.train_message or case.message, env)
    assert len(calls) <= 1
    # nothing was registered: bad input never reaches the registry
    if (env / ".recsys").exists():
        import mlflow

        from recsys_core.tracking import mlflow_run

        mlflow_run.configure()
        try:
            assert mlflow.MlflowClient().search_model_versions("name='badinputs'") == []
        finally:
            mlflow.set_tracking_uri(None)


def test_debug_shows_the_traceback(env):
    args = ["--debug", "evaluate", "--train", "nope.csv", "--test", "test.csv"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert "Traceback" in res.output and "DataSourceError" in res.output
    assert res.output.rstrip().splitlines()[-1].startswith("error: file not found")


def test_an_unexpected_error_is_one_line_too(env, monkeypatch):
    from recsys_core.models.baselines import Bias

    def boom(self, data, **kwargs):
        raise ZeroDivisionError("division by zero in a model")

    monkeypatch.setattr(Bias, "fit", boom)
    res = runner.invoke(
        app, ["evaluate", "--train", "train.csv", "--test", "test.csv", "--model", "bias"]
    )
    assert res.exit_code == 1
    assert res.output.strip() == (
        "error: ZeroDivisionError: division by zero in a model (--debug shows the traceback)"
    )
    assert os.environ.get("RECSYS_DEBUG") is None


def test_good_files_still_pass(env):
    res = runner.invoke(
        app, ["evaluate", "--train", "train.csv", "--test", "test.csv", "--model", "bias", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_test"] > 0
