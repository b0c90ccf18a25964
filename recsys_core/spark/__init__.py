"""Spark: the session settings and the checks that make a bad setting fail fast."""

from recsys_core.spark.session import SparkSettings, spark_session, stop_session

__all__ = ["SparkSettings", "spark_session", "stop_session"]
