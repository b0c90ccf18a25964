"""The settings tree: read once, .env and the environment alike, bad values named, documented,
and the only reader of the environment."""

import re
from pathlib import Path

import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.settings import get_settings, markdown_table, reset_settings, variables

ROOT = Path(__file__).resolve().parents[2]


def test_read_once_until_reset(monkeypatch):
    monkeypatch.setenv("RECSYS_DASK_WORKERS", "3")
    first = get_settings()
    assert first.tuning.dask_workers == 3
    import os

    os.environ["RECSYS_DASK_WORKERS"] = "5"  # behind the settings' back: not seen
    try:
        assert get_settings() is first and get_settings().tuning.dask_workers == 3
        reset_settings()
        assert get_settings().tuning.dask_workers == 5
    finally:
        monkeypatch.delenv("RECSYS_DASK_WORKERS")


def test_dotenv_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECSYS_IO_RETRIES", raising=False)
    monkeypatch.delenv("RECSYS_IO_RETRY_DELAYS", raising=False)
    (tmp_path / ".env").write_text("RECSYS_IO_RETRIES=5\nRECSYS_IO_RETRY_DELAYS=1, 2.5\n")
    reset_settings()
    assert get_settings().retries.io_retries == 5
    assert get_settings().retries.io_retry_delays == (1.0, 2.5)
    monkeypatch.setenv("RECSYS_IO_RETRIES", "1")  # the environment wins over .env
    assert get_settings().retries.io_retries == 1
    monkeypatch.setenv("RECSYS_IO_RETRIES", "")  # empty: unset, so .env's
    assert get_settings().retries.io_retries == 5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RECSYS_IO_RETRIES", "many", "RECSYS_IO_RETRIES='many': Input should be a valid integer"),
        ("RECSYS_IO_RETRIES", "11", "RECSYS_IO_RETRIES='11': Input should be less than or equal"),
        ("RECSYS_IO_RETRY_DELAYS", "2,soon", "RECSYS_IO_RETRY_DELAYS='2,soon': not a comma-"),
        (
            "RECSYS_PROMOTION_LOCK_WAIT",
            "-1",
            "RECSYS_PROMOTION_LOCK_WAIT='-1': Input should be greater than 0",
        ),
        ("RECSYS_DASK_WORKERS", "two", "RECSYS_DASK_WORKERS='two'"),
        ("RECSYS_KEEP_RUN_FILES", "perhaps", "RECSYS_KEEP_RUN_FILES='perhaps'"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_settings()


def test_the_readme_table_is_generated_from_the_tree():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- settings-table: start -->\n")[1].split(
        "<!-- settings-table: end -->"
    )[0]
    assert block == markdown_table(), (
        "README.md's table of settings is out of step with recsys_core/settings.py; paste the "
        "output of: python -c 'from recsys_core.settings import markdown_table; "
        'print(markdown_table(), end="")\''
    )
    names = [name for name, _, _ in variables()]
    # recsys's own, MLflow's artifact endpoint (named in messages) and libpq's password (sent
    # to the hosts that may receive it)
    assert len(names) == len(set(names))
    assert all(
        n.startswith("RECSYS_") or n in ("MLFLOW_S3_ENDPOINT_URL", "PGPASSWORD") for n in names
    )


# Modules that still touch os.environ, and why. Setting a variable for a library or a child
# process is allowed; reading one of recsys's own is not (it belongs in recsys_core.settings).
ALLOWED = {
    # BLAS threads and telemetry switches set for the libraries, before they load
    "recsys_cli/main.py": "sets variables for the libraries it loads",
    "recsys_cli/prefect_console.py": "sets Prefect's own settings before Prefect reads them",
    "recsys_cli/serve.py": "sets MLflow's and prometheus-client's variables, and "
    "RECSYS_SERVE_AUTH=false after --no-auth, for the workers it starts",
    "recsys_core/validation/suite.py": "sets Great Expectations' analytics switch",
    "recsys_core/redaction.py": "reads the values of secret variables to hide them",
    "recsys_core/spark/storage.py": "copies the AWS variables into Spark's Hadoop settings",
    "recsys_core/tracking/doctor.py": "reports the variables it was given",
    "recsys_cli/keys.py": "registers the key held in the variable its --from-env names",
    "recsys_core/tracking/mlflow_run.py": "MLflow's own MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI",
    "recsys_core/spark/session.py": "Java's JAVA_HOME; PYSPARK_PYTHON set for the executors",
    "recsys_service/metrics.py": "prometheus-client's own PROMETHEUS_MULTIPROC_DIR",
}


def test_no_environment_read_outside_the_settings_tree():
    found = set()
    for package in ("recsys_core", "tasks", "flows", "recsys_cli", "recsys_service"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel != "recsys_core/settings.py" and re.search(
                r"os\.environ|os\.getenv|getenv\(", path.read_text()
            ):
                found.add(rel)
    assert found - set(ALLOWED) == set(), "read the variable through recsys_core.settings"
    assert set(ALLOWED) - found == set(), "no longer touches os.environ: drop it from ALLOWED"
