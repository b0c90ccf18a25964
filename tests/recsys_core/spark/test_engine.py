"""The evaluation engine setting: auto picks Spark for the Spark models; bad settings named."""

import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models.registry import get_model_class
from recsys_core.spark.engine import resolve_engine, scores_in_spark


@pytest.mark.parametrize(
    ("engine", "model", "want"),
    [
        ("auto", "spark-als", "spark"),
        ("auto", "spark-als-implicit", "spark"),
        ("auto", "sgd-mf", "local"),
        ("auto", "popularity", "local"),
        ("local", "spark-als", "local"),
        ("spark", "sgd-mf", "spark"),
        ("spark", "implicit-als", "spark"),
    ],
)
def test_the_engine_a_setting_resolves_to(engine, model, want):
    assert resolve_engine(engine, model) == want


def test_what_spark_can_score_is_known_before_fitting():
    assert scores_in_spark(get_model_class("als")) and scores_in_spark(get_model_class("dp-als"))
    assert scores_in_spark(get_model_class("implicit-bpr"))
    # svdpp keeps factors, but its predictions add an implicit term the factors do not hold
    assert not scores_in_spark(get_model_class("svdpp"))
    assert not scores_in_spark(get_model_class("ease"))


def test_bad_settings_are_named():
    with pytest.raises(
        ConfigError,
        match=r"unknown evaluation engine 'gpu'; use one of auto, "
        r"local, spark",
    ):
        resolve_engine("gpu", "spark-als")
    with pytest.raises(ConfigError, match=r"'popularity' is not one; use the local engine"):
        resolve_engine("spark", "popularity")
