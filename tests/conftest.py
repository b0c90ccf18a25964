"""Settings shared by every test: no telemetry, BLAS pinned, nothing written outside tmp."""

import contextlib
import os
import sys
import uuid

import pytest

# pyspark.sql.connect (which Great Expectations imports) exits a process whose __main__ has
# neither a spec nor a file, taking it for a doctest run: a pytest-xdist worker's __main__ is
# such a module. An empty file stands in (multiprocessing's spawned children run it as their
# __main__, which does nothing).
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = os.path.join(os.path.dirname(__file__), "worker_main.py")

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# one small local Spark for the Spark tests (the default, local[*], takes every core)
os.environ.setdefault("RECSYS_SPARK_MASTER", "local[2]")


def _kinds(item) -> set[str]:
    """The slow kinds a test belongs to, from where it lives and what it uses."""
    path = item.nodeid.split("::", 1)[0]
    kinds = set()
    if path.startswith("tests/stack/"):
        kinds.add("stack")
    if "prefect_server" in getattr(item, "fixturenames", ()):
        kinds.add("flow")
    if "spark" in item.nodeid.lower():  # modules, classes and parameters named after Spark
        kinds.add("spark")
    if path in _SERVER_MODULES or {"server_process", "live_server"} & set(
        getattr(item, "fixturenames", ())
    ):
        kinds.add("slow")
    return kinds


# modules whose every test starts servers or subprocesses of its own
_SERVER_MODULES = {
    "tests/infra/test_loopback.py",
    "tests/recsys_service/test_workers.py",
    "tests/recsys_service/test_mlflow_models_serve.py",
}


def pytest_collection_modifyitems(config, items):
    """Marks every test by the slow kinds it belongs to (``stack``, ``flow``, ``spark``,
    ``slow``), in this one place, so ``-m "not (stack or flow or spark or slow)"`` (``make
    test-fast``) selects the rest. Under pytest-xdist, the stack tests first, in their own
    order: the longest unit of work starts first (see ``pytest_xdist_make_scheduler``)."""
    for item in items:
        for kind in _kinds(item):
            item.add_marker(kind)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        items.sort(key=lambda item: item.get_closest_marker("stack") is None)  # stable


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, called only when it runs
def pytest_xdist_make_scheduler(config, log):
    """Under ``-n``, tests are handed out a module at a time (a module's module-scoped fixtures
    are built once), and every stack test to one worker, first: that worker alone starts the
    loopback stack while the others run the rest. (``--dist loadgroup`` with ``xdist_group``
    marks would say the same, but it no longer groups on pytest 9.2: pytest-xdist#1386.)"""
    if config.getvalue("dist") not in ("load", "loadscope", "loadfile", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class StackThenModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/stack" if path.startswith("tests/stack/") else path

    config.option.loadscopereorder = False  # the collection's order (the stack first), not size
    return StackThenModules(config, log)


def worker_suffix() -> str:
    """``_gw0``, ``_gw1``... under pytest-xdist, else empty: in names that workers share (test
    databases on one PostgreSQL server)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"_{worker}" if worker else ""


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One Prefect test server for every test that runs flows or tasks."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def empty_store_db(tmp_path_factory):
    """An initialised, empty MLflow database that tests copy into their working directory.

    The schema migration of a new database takes seconds, and every test process (each mutant of
    ``make mutation`` is one) would pay it: the database is built once per MLflow version under
    pytest's temporary root, which test processes share (as pytest-xdist does for its workers),
    and renamed into place only once complete, so a concurrent process never copies half of it.
    """
    import mlflow

    from recsys_core.tracking import mlflow_run

    shared = tmp_path_factory.getbasetemp().parent / f"mlflow-{mlflow.__version__}-empty-store.db"
    if not shared.exists():
        folder = tmp_path_factory.mktemp("mlflow-template")
        # the default experiment's artifact location is ./mlruns of the creating folder
        with contextlib.chdir(folder):
            mlflow.set_tracking_uri(mlflow_run.default_tracking_uri(folder))
            mlflow.MlflowClient().search_registered_models()
            mlflow.set_tracking_uri(None)
        os.replace(folder / mlflow_run.EMBEDDED_DIR / "mlflow.db", shared)
    return shared


@pytest.fixture
def embedded_store(tmp_path, monkeypatch, empty_store_db):
    """``tmp_path`` as working directory, with the embedded MLflow store (a copied empty one)."""
    import shutil

    import mlflow

    from recsys_core.tracking import mlflow_run

    (tmp_path / mlflow_run.EMBEDDED_DIR).mkdir()
    shutil.copy(empty_store_db, tmp_path / mlflow_run.EMBEDDED_DIR / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri = mlflow_run.configure()
    assert uri.startswith("sqlite:///") and str(tmp_path) in uri
    yield tmp_path
    mlflow.set_tracking_uri(None)


# PostgreSQL at 127.0.0.1:5432 (RECSYS_TEST_PG): a database per test, dropped after it
PG = os.environ.get("RECSYS_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def pg_admin():
    """An autocommit connection to the server's ``postgres`` database."""
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=3)
    conn.autocommit = True
    return conn


# RECSYS_TEST_REQUIRE_SERVICES=true (set by .ci/run): a missing PostgreSQL server or psql
# client fails the tests that need it instead of skipping them, so that a green run means the
# PostgreSQL half of the event store was tested
REQUIRE_SERVICES = os.environ.get("RECSYS_TEST_REQUIRE_SERVICES", "").lower() in {"1", "true"}


def missing(what: str) -> None:
    """Skip the test for want of ``what``, or fail it where the run requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(
            f"{what}; this run requires it (RECSYS_TEST_REQUIRE_SERVICES is set): "
            "start it, or unset the variable to skip these tests",
            pytrace=False,
        )
    pytest.skip(what)


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL server's base URL; the tests that need it are skipped without one (or
    fail, under ``RECSYS_TEST_REQUIRE_SERVICES``)."""
    import psycopg2

    try:
        pg_admin().close()
    except psycopg2.OperationalError as exc:
        missing(f"no PostgreSQL at {PG}: {exc}")
    return PG


@pytest.fixture(scope="session")
def psql_client(pg_server) -> str:
    """The path of the ``psql`` client (the role scripts run through it)."""
    import shutil

    path = shutil.which("psql")
    if path is None:
        missing("psql is not installed (Debian: apt-get install postgresql-client)")
    return path


@pytest.fixture
def pg_url(pg_server):
    """A new, empty PostgreSQL database (dropped after the test)."""
    prefix = os.environ.get("RECSYS_TEST_DB_PREFIX", "recsys_test")
    name = f"{prefix}{worker_suffix()}_ev_{uuid.uuid4().hex[:10]}"
    conn = pg_admin()
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_server}/{name}"
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def s3_endpoint():
    """The URL of a real S3 API over HTTP on loopback (moto's server, started once).

    moto keeps its buckets per process, not per server: every test sees what earlier tests
    stored, so a test uses bucket names of its own (or resets, as tests/infra/test_buckets.py
    does)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _prefect_console_on_the_current_stderr():
    """A CLI runner lends a command its own ``sys.stderr`` and closes it afterwards; Prefect
    sets its console handler up once per process, on the stream of that moment. A command
    re-points it at its own stream first (``recsys_cli.prefect_console``); after each test it
    goes back to the session's stream, so that the flows of a later test do not log into a closed
    one (each line an "I/O operation on closed file", then a RecursionError in Prefect's
    handler)."""
    yield
    from recsys_cli.prefect_console import console_on_this_stderr

    console_on_this_stderr()


@pytest.fixture(autouse=True)
def _settings_read_afresh(monkeypatch):
    """``recsys_core.settings`` reads the environment once per process; in a test, a variable
    set or removed through ``monkeypatch`` is read again on the next use (and every test starts
    from the environment as it is)."""
    from recsys_core.settings import reset_settings

    reset_settings()
    for name in ("setenv", "delenv"):
        change = getattr(monkeypatch, name)

        def then_reset(*args, _change=change, **kwargs):
            _change(*args, **kwargs)
            reset_settings()

        setattr(monkeypatch, name, then_reset)
    yield
    reset_settings()
