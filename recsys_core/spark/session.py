"""One Spark session per process, built from settings, with the checks that fail fast.

Settings (environment variables, read when a session is first needed):

* ``RECSYS_SPARK_MASTER``: ``spark.master``; ``local[*]`` by default, ``spark://host:7077`` for a
  standalone cluster, ``k8s://https://host:443`` for Kubernetes;
* ``RECSYS_SPARK_CONNECT_TIMEOUT``: seconds allowed to reach a remote master (default 5);
* ``RECSYS_SPARK_DRIVER_MEMORY``: ``spark.driver.memory`` (default ``2g``);
* ``RECSYS_SPARK_SHUFFLE_PARTITIONS``: ``spark.sql.shuffle.partitions`` (default: 2 x the
  local cores for a local master, Spark's 200 otherwise);
* ``RECSYS_SPARK_SCRATCH_DIR``: where the driver writes the Parquet that executors read (the
  training triples); a temporary folder by default, which only a local master can read: on a
  cluster, a folder mounted at the same path on the driver and every Spark worker;
* ``RECSYS_SPARK_PACKAGES`` / ``RECSYS_SPARK_JARS``: ``spark.jars.packages`` (Maven
  coordinates) and ``spark.jars`` (local jar paths), comma-separated; ``s3a://`` input needs
  ``hadoop-aws`` there (see ``recsys_core.spark.storage``).

Spark needs a Java runtime and a reachable master. Without either, pyspark would fail late (a
JVM that exits with a long stack trace) or hang (a standalone client retries an unreachable
master for a minute), so both are checked first: a missing ``java`` names the OS package to
install, an unreachable master names the setting, within the connect timeout.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recsys_core.exceptions import ConfigError
from recsys_core.extras import require
from recsys_core.settings import SparkSection, get_settings, variable_of

log = logging.getLogger(__name__)

# the variables named in messages, as the settings tree names them
MASTER_ENV, MEMORY_ENV, SCRATCH_ENV = (
    variable_of(SparkSection, field) for field in ("master", "driver_memory", "scratch_dir")
)
JAVA_PACKAGE = "openjdk-17-jre-headless"

_LOCAL = re.compile(r"^local(\[(\*|\d+)(,\d+)?\])?$|^local-cluster\[\d+,\d+,\d+\]$")


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs; runtime settings, never model hyperparameters."""

    master: str = "local[*]"
    connect_timeout: float = 5.0
    driver_memory: str = "2g"
    shuffle_partitions: int | None = None
    packages: str = ""
    jars: str = ""

    @classmethod
    def from_env(cls) -> SparkSettings:
        """The settings of the process (``recsys_core.settings``, section ``spark``)."""
        spark = get_settings().spark
        return cls(
            master=spark.master.strip() or "local[*]",
            connect_timeout=spark.connect_timeout,
            driver_memory=spark.driver_memory.strip() or "2g",
            shuffle_partitions=spark.shuffle_partitions,
            packages=spark.packages.strip(),
            jars=spark.jars.strip(),
        )

    @property
    def is_local(self) -> bool:
        return bool(_LOCAL.match(self.master))


def scratch_dir() -> str | None:
    """``RECSYS_SPARK_SCRATCH_DIR`` if set (it must be an existing folder), else ``None``."""
    raw = (get_settings().spark.scratch_dir or "").strip()
    if not raw:
        return None
    if not Path(raw).is_dir():
        raise ConfigError(
            f"{SCRATCH_ENV}={raw!r} is not an existing folder; create it (mounted at the same "
            "path on the driver and every Spark worker) or unset it for a local master"
        )
    return raw


def java_executable() -> str:
    """The ``java`` Spark will start, or a ConfigError naming the package to install."""
    home = os.environ.get("JAVA_HOME", "").strip()
    if home:
        java = Path(home) / "bin" / "java"
        if java.is_file() and os.access(java, os.X_OK):
            return str(java)
        raise ConfigError(
            f"JAVA_HOME={home!r} holds no bin/java; Spark needs a Java runtime (17): install "
            f"the OS package {JAVA_PACKAGE} (Debian/Ubuntu) and set JAVA_HOME to it, or unset "
            "JAVA_HOME to use the java on PATH"
        )
    found = shutil.which("java")
    if found is None:
        raise ConfigError(
            "Spark needs a Java runtime (17) and there is no java on PATH nor a JAVA_HOME: "
            f"install the OS package {JAVA_PACKAGE} (apt-get install {JAVA_PACKAGE}) or set "
            "JAVA_HOME"
        )
    return found


def check_master(settings: SparkSettings) -> None:
    """Raise a ConfigError unless ``settings.master`` is well formed and, when remote, answers
    a TCP connection within ``settings.connect_timeout`` seconds."""
    master = settings.master
    if settings.is_local or master == "yarn":
        return
    if master.startswith("spark://"):
        targets = [hp.strip() for hp in master[len("spark://") :].split(",")]
        endpoints = [_host_port(master, f"//{hp}", 7077) for hp in targets]
    elif master.startswith("k8s://"):
        url = master[len("k8s://") :]
        url = url if "://" in url else f"https://{url}"
        endpoints = [_host_port(master, url, 443)]
    else:
        raise ConfigError(
            f"{MASTER_ENV}={master!r} is not a Spark master; use local[*], local[N], "
            "spark://host:7077 or k8s://https://host:443"
        )
    errors = []
    for host, port in endpoints:
        try:
            with socket.create_connection((host, port), timeout=settings.connect_timeout):
                return  # one live master of a list is enough (standalone high availability)
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc.strerror or exc}")
    raise ConfigError(
        f"the Spark master {master!r} cannot be reached within {settings.connect_timeout:g}s "
        f"({'; '.join(errors)}); start the cluster or set {MASTER_ENV} (local[*] runs Spark "
        "in this process)"
    )


def _host_port(master: str, url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(f"{MASTER_ENV}={master!r} has no valid host:port")
    return parts.hostname, port


_lock = threading.Lock()
_session: Any = None
_session_master: str | None = None


def spark_session(settings: SparkSettings | None = None) -> Any:
    """The process's SparkSession for ``settings`` (from the environment by default).

    Built once and reused (a JVM start takes seconds); a different master stops the old session
    first. Raises ConfigError when Java is missing or the master cannot be reached.
    """
    global _session, _session_master
    require("pyspark", "spark")  # a missing extra: what to install, before any Java check
    settings = settings or SparkSettings.from_env()
    with _lock:
        if _session is not None and _session_master == settings.master:
            return _session
        java_executable()
        check_master(settings)
        if _session is not None:
            _session.stop()
            _session = None
        from pyspark.sql import SparkSession

        partitions = settings.shuffle_partitions or (
            2 * (os.cpu_count() or 1) if settings.is_local else 200
        )
        builder = (
            SparkSession.builder.master(settings.master)
            .appName("recsys")
            .config("spark.driver.memory", settings.driver_memory)
            .config("spark.sql.shuffle.partitions", str(partitions))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # a driver that cannot talk to the cluster gives up instead of waiting
            .config("spark.network.timeout", f"{max(int(settings.connect_timeout), 10) * 6}s")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        for key, value in (
            ("spark.jars.packages", settings.packages),
            ("spark.jars", settings.jars),
        ):
            if value:
                builder = builder.config(key, value)
        if settings.is_local and not os.environ.get("PYSPARK_PYTHON"):
            # Python workers (the evaluator's scoring) run this interpreter and its packages,
            # not the first python3 on PATH (pyspark reads the variable, not the conf key, when
            # the context starts); on a cluster, PYSPARK_PYTHON names the executors' Python
            os.environ["PYSPARK_PYTHON"] = sys.executable
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # the JVM did not start: a bad master URL, memory, ...
            raise ConfigError(
                f"Spark could not start with {MASTER_ENV}={settings.master!r}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; check the "
                f"master, {MEMORY_ENV} and the Java runtime ({JAVA_PACKAGE})"
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
        _session, _session_master = session, settings.master
        log.info("Spark session started on %s", settings.master)
        return session


def stop_session() -> None:
    """Stop the process's SparkSession, if any."""
    global _session, _session_master
    with _lock:
        if _session is not None:
            _session.stop()
        _session, _session_master = None, None
