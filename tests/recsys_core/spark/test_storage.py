"""Spark's input: local Parquet, and the S3A settings and fail-fast checks of s3a:// paths
(the shared local[2] session, which has no hadoop-aws jar: the failure path runs for real)."""

import time

import pandas as pd
import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.spark.session import spark_session
from recsys_core.spark.storage import (
    bundled_hadoop_version,
    hadoop_aws_coordinate,
    read_parquet,
    s3a_options,
)

CREDS = {"AWS_ACCESS_KEY_ID": "minio", "AWS_SECRET_ACCESS_KEY": "minio-secret"}


def test_s3a_options_from_the_s3_settings(monkeypatch):
    monkeypatch.setenv("RECSYS_S3_CONNECT_TIMEOUT", "3")
    opts = s3a_options({**CREDS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"})
    assert opts["fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert opts["fs.s3a.path.style.access"] == "true"
    assert opts["fs.s3a.connection.ssl.enabled"] == "false"
    assert (opts["fs.s3a.access.key"], opts["fs.s3a.secret.key"]) == ("minio", "minio-secret")
    assert opts["fs.s3a.connection.establish.timeout"] == "3000"
    assert "fs.s3a.aws.credentials.provider" not in opts
    # recsys's own endpoint setting wins over AWS's; https turns TLS on; a token, its provider
    opts = s3a_options(
        {
            **CREDS,
            "AWS_SESSION_TOKEN": "t",
            "AWS_ENDPOINT_URL": "http://x:1",
            "RECSYS_S3_ENDPOINT_URL": "https://minio.example:9443",
        }
    )
    assert opts["fs.s3a.endpoint"] == "https://minio.example:9443"
    assert opts["fs.s3a.connection.ssl.enabled"] == "true"
    assert opts["fs.s3a.aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")
    assert "fs.s3a.endpoint" not in s3a_options(CREDS)  # AWS itself
    with pytest.raises(ConfigError, match="'ftp://host' is not an http"):
        s3a_options({"AWS_ENDPOINT_URL": "ftp://host"})


def test_hadoop_aws_coordinate_matches_the_jvm_hadoop():
    jvm = spark_session().sparkContext._jvm
    assert bundled_hadoop_version() == jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert hadoop_aws_coordinate() == f"org.apache.hadoop:hadoop-aws:{bundled_hadoop_version()}"


def test_local_parquet_is_read_by_spark(tmp_path):
    frame = pd.DataFrame(
        {"user": ["a", "b", "c"], "item": ["x", "y", "x"], "rating": [4.0, 3.0, 5.0]}
    )
    frame.to_parquet(tmp_path / "r.parquet")
    df = read_parquet(str(tmp_path / "r.parquet"))
    assert df.count() == 3 and set(df.columns) == {"user", "item", "rating"}


def test_s3a_without_the_hadoop_aws_jar_fails_fast_naming_the_setting(monkeypatch):
    for var, value in CREDS.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    spark = spark_session()
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        read_parquet("s3://ratings/2026/ratings.parquet", spark)
    assert time.monotonic() - started < 10
    msg = str(err.value)
    assert "'s3a://ratings/2026/ratings.parquet'" in msg and "S3AFileSystem" in msg
    assert f"RECSYS_SPARK_PACKAGES={hadoop_aws_coordinate()}" in msg
    assert "RECSYS_SPARK_JARS" in msg and f"hadoop-aws-{bundled_hadoop_version()}.jar" in msg


def test_s3a_without_credentials_names_them(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "only-half")
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not"):
        read_parquet("s3a://ratings/r.parquet")


def test_packages_and_jars_settings(monkeypatch):
    from recsys_core.spark.session import SparkSettings

    monkeypatch.setenv("RECSYS_SPARK_PACKAGES", f" {hadoop_aws_coordinate()} ")
    monkeypatch.setenv("RECSYS_SPARK_JARS", "/opt/jars/hadoop-aws.jar,/opt/jars/bundle.jar")
    settings = SparkSettings.from_env()
    assert settings.packages == hadoop_aws_coordinate()
    assert settings.jars == "/opt/jars/hadoop-aws.jar,/opt/jars/bundle.jar"
