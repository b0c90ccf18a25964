"""Where Spark reads ratings from: local Parquet, or ``s3a://`` on AWS S3 or MinIO.

``read_parquet(path)`` reads a Parquet file or folder on Spark's executors (nothing is collected
to the driver). For ``s3a://`` (and ``s3://``, read as ``s3a://``) it first sets the S3A options
of the session's Hadoop configuration from recsys's S3 settings:

* ``fs.s3a.endpoint`` from ``RECSYS_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` or
  ``AWS_ENDPOINT_URL`` (the MinIO endpoint; unset: AWS), with path-style access and TLS as the
  URL's scheme says;
* ``fs.s3a.access.key`` / ``secret.key`` / ``session.token`` from ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` (Spark redacts them in its UI and logs);
* the connection timeout and attempts from ``RECSYS_S3_CONNECT_TIMEOUT`` and
  ``RECSYS_S3_MAX_ATTEMPTS``.

The S3A filesystem is not part of pyspark: it lives in Hadoop's ``hadoop-aws`` jar (plus the AWS
SDK bundle it depends on), of the same version as the Hadoop that pyspark bundles
(``hadoop_aws_coordinate()``). Set ``RECSYS_SPARK_PACKAGES`` to that coordinate (Spark downloads
it and the SDK from Maven when the session starts) or ``RECSYS_SPARK_JARS`` to local copies of
both jars (machines without Maven access). Without them, or without credentials, reading fails
at once with a message naming the setting, instead of a stack trace from the first task.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recsys_core.exceptions import ConfigError

PACKAGES_ENV = "RECSYS_SPARK_PACKAGES"
JARS_ENV = "RECSYS_SPARK_JARS"
S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
_ENDPOINT_ENVS = ("RECSYS_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def bundled_hadoop_version() -> str:
    """The version of the Hadoop client jars pyspark ships (``3.5.0`` for pyspark 4.1)."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    for jar in sorted(jars.glob("hadoop-client-api-*.jar")):
        match = re.fullmatch(r"hadoop-client-api-(.+)\.jar", jar.name)
        if match:
            return match.group(1)
    raise ConfigError(f"no hadoop-client-api jar in {jars}; reinstall pyspark")


def hadoop_aws_coordinate() -> str:
    """The Maven coordinate of the ``hadoop-aws`` jar matching pyspark's Hadoop."""
    return f"org.apache.hadoop:hadoop-aws:{bundled_hadoop_version()}"


def s3a_options(env: dict[str, str] | None = None) -> dict[str, str]:
    """The ``fs.s3a.*`` Hadoop options from the S3 settings in ``env`` (default: the process's)."""
    from recsys_core.data.files import s3_settings

    env = dict(os.environ if env is None else env)
    settings = s3_settings()
    opts = {
        "fs.s3a.impl": S3A_CLASS,
        "fs.s3a.connection.timeout": f"{int(settings.connect_timeout * 1000)}",
        "fs.s3a.connection.establish.timeout": f"{int(settings.connect_timeout * 1000)}",
        "fs.s3a.attempts.maximum": str(settings.max_attempts),
        "fs.s3a.retry.limit": str(settings.max_attempts),
    }
    endpoint = next((env[k].strip() for k in _ENDPOINT_ENVS if env.get(k, "").strip()), "")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"the S3 endpoint {endpoint!r} is not an http(s) URL; set "
                "AWS_ENDPOINT_URL to one such as http://127.0.0.1:9000"
            )
        opts.update(
            {
                "fs.s3a.endpoint": f"{parts.scheme}://{parts.netloc}",
                "fs.s3a.path.style.access": "true",  # MinIO and other stores without bucket DNS
                "fs.s3a.connection.ssl.enabled": str(parts.scheme == "https").lower(),
            }
        )
    for option, var in (
        ("access.key", "AWS_ACCESS_KEY_ID"),
        ("secret.key", "AWS_SECRET_ACCESS_KEY"),
        ("session.token", "AWS_SESSION_TOKEN"),
    ):
        if env.get(var):
            opts[f"fs.s3a.{option}"] = env[var]
    if "fs.s3a.session.token" in opts:
        opts["fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        )
    return opts


def check_s3a(spark: Any, path: str, env: dict[str, str] | None = None) -> None:
    """Raise a ConfigError unless ``path`` can be read through S3A: credentials are set and
    the S3A filesystem class is on the session's classpath."""
    env = dict(os.environ if env is None else env)
    if not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
        raise ConfigError(
            f"reading {path!r} needs S3 credentials and AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY are not both set; set them (and AWS_ENDPOINT_URL for MinIO)"
        )
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("s3a", conf)
    except Exception as exc:  # py4j's Py4JJavaError: ClassNotFoundException inside
        if "ClassNotFoundException" not in str(exc) and S3A_CLASS not in str(exc):
            raise
        coordinate = hadoop_aws_coordinate()
        raise ConfigError(
            f"reading {path!r} needs Hadoop's S3A filesystem ({S3A_CLASS}), which is not on "
            f"Spark's classpath: set {PACKAGES_ENV}={coordinate} (Spark downloads it and the "
            f"AWS SDK bundle from Maven at start), or {JARS_ENV} to local copies of "
            f"hadoop-aws-{bundled_hadoop_version()}.jar and the AWS SDK bundle jar; then "
            "start a new Spark session (a new process)"
        ) from exc


def read_parquet(path: str, spark: Any = None) -> Any:
    """A Spark DataFrame of the Parquet file or folder at ``path`` (local, ``s3a://``, ...)."""
    from recsys_core.spark.session import spark_session

    spark = spark or spark_session()
    if path.startswith("s3://"):
        path = "s3a://" + path[len("s3://") :]
    elif "://" not in path:  # a JVM started elsewhere resolves a relative path against its own cwd
        path = str(Path(path).resolve())
    if path.startswith("s3a://"):
        check_s3a(spark, path)
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        for key, value in s3a_options().items():
            conf.set(key, value)
    return spark.read.parquet(path)
