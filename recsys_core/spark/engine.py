"""Which engine scores a model on a test split: ``local`` (numpy, in this process) or ``spark``.

The setting takes three values:

* ``auto`` (the default): Spark for the models Spark fits (``capabilities.fitted_in_spark``:
  ``spark-als``, ``spark-als-implicit``, whose data is expected to outgrow one machine), local for
  every other model;
* ``local``: ``recsys_core.evaluation.evaluate`` on pandas frames;
* ``spark``: ``recsys_core.spark.evaluation`` on Spark DataFrames read from the split's Parquet
  files; it scores the families that declare ``capabilities.scored_in_spark`` (factor models).

Both engines compute the same metrics under the same names (checked to 1e-6 by the tests), so the
gate reads either. Baselines and champions are always scored locally: they are small models
re-scored on the same split, by the same definitions.
"""

from __future__ import annotations

from typing import Literal, get_args

from recsys_core.exceptions import ConfigError
from recsys_core.models.base import Recommender

EvaluationEngine = Literal["auto", "local", "spark"]
ENGINES: tuple[str, ...] = get_args(EvaluationEngine)


def is_spark_model(model_name: str) -> bool:
    """Whether Spark fits the model of that registry name (``spark-als``, ...), as it declares."""
    from recsys_core.models.registry import get_model_class

    return get_model_class(model_name).capabilities.fitted_in_spark


def scores_in_spark(model_class: type[Recommender]) -> bool:
    """Whether the Spark evaluator can score models of ``model_class``, known before fitting.

    It scores what it can rebuild from factors alone, as the family declares
    (``capabilities.scored_in_spark``): the biased factor models (``mu + b_u + b_i + p_u .
    q_i``: ``sgd-mf``, ``als``, ``spark-als``, ...) and the ranking models that keep user and
    item factors (``p_u . q_i``: ``implicit-als``, ``spark-als-implicit``, ...). A rating model
    whose prediction holds more than its factors (``svdpp``'s implicit term) is scored locally.
    """
    return model_class.capabilities.scored_in_spark


def resolve_engine(engine: str, model_name: str) -> Literal["local", "spark"]:
    """The engine that scores a model of ``model_name`` under the setting ``engine``.

    Raises ConfigError for an unknown setting, and for ``spark`` with a model the Spark
    evaluator cannot score.
    """
    if engine not in ENGINES:
        raise ConfigError(
            f"unknown evaluation engine {engine!r}; use one of {', '.join(ENGINES)} (auto: "
            "spark for the Spark models, local for the others)"
        )
    if engine == "local" or (engine == "auto" and not is_spark_model(model_name)):
        return "local"
    from recsys_core.models.registry import get_model_class

    if not scores_in_spark(get_model_class(model_name)):
        raise ConfigError(
            f"the spark evaluation engine scores factor models (spark-als, als, sgd-mf, "
            f"implicit-als, ...) and {model_name!r} is not one; use the local engine for it"
        )
    return "spark"
