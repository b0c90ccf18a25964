"""Start-up of a one-shot command: ``recsys evaluate`` loads no library it does not use."""

import pathlib
import subprocess
import sys

import numpy as np

from recsys_core.data.synthetic import config_for, generate

ROOT = pathlib.Path(__file__).resolve().parents[1]

# each costs from a few tenths of a second to seconds of start-up; none is needed to fit sgd-mf
# on a file and score it
HEAVY = (
    "prefect",
    "mlflow",
    "great_expectations",
    "sklearn",
    "torch",
    "pyspark",
    "lightgbm",
    "dp_accounting",
    # the event store's engine: only where a store exists to be read (none in tmp_path)
    "sqlalchemy",
    # the model families other than sgd-mf: the registry imports the named model's module only
    "recsys_core.models.ease",
    "recsys_core.models.knn",
    "recsys_core.models.implicit_models",
    "recsys_core.models.spark_als",
    "threadpoolctl",
    # numba's compiler (its lowering registries): cached kernels load without it
    "numba.np.arraymath",
    # numba's array implementation: no kernel of the command allocates an array
    "numba.np.arrayobj",
)


def test_recsys_evaluate_loads_none_of_the_heavy_libraries(tmp_path):
    frame = generate(config_for("tiny", seed=3)).interactions
    held = np.random.default_rng(3).random(len(frame)) < 0.2
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    frame[~held].to_csv(train, index=False)
    frame[held].to_csv(test, index=False)
    code = (
        "import sys\n"
        "from recsys_cli.main import app\n"
        f"args = ['evaluate', '--train', {str(train)!r}, '--test', {str(test)!r}, '--json',\n"
        "        '--param', 'epochs=2', '--param', 'factors=4']\n"
        "try:\n"
        "    app(args, standalone_mode=False)\n"
        "finally:\n"
        f"    print('LOADED=' + ','.join(n for n in {HEAVY!r} if n in sys.modules))\n"
    )
    # a first run fills numba's cache of compiled kernels where it is empty (a fresh checkout):
    # compiling readies numba's compiler, which a second run loads the kernels without
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
    assert '"ndcg_at_10"' in out.stdout  # the command ran to its end
    assert out.stdout.strip().splitlines()[-1] == "LOADED="


def test_the_recsys_command_exits_with_the_command_s_code(tmp_path):
    # `python -m recsys_cli.main` and the `recsys` script run the same entry point (run)
    frame = generate(config_for("tiny", seed=3)).interactions
    frame.to_csv(tmp_path / "data.csv", index=False)
    base = [sys.executable, "-m", "recsys_cli.main", "evaluate", "--json", "--metrics", "rating"]
    files = ["--train", str(tmp_path / "data.csv"), "--test", str(tmp_path / "data.csv")]
    ok = subprocess.run(
        [*base, *files, "-p", "epochs=1", "-p", "factors=2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert '"rmse"' in ok.stdout
    bad = subprocess.run(
        [*base, *files, "--model", "popularity"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert bad.returncode == 2 and "does not predict ratings" in bad.stderr
