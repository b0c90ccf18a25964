"""Which engine scores a model on a test split: ``local`` (numpy, in this process) or ``spark``.

The setting takes three values:

* ``auto`` (the default): Spark for the Spark models (``spark-als``, ``spark-als-implicit``,
  whose data is expected to outgrow one machine), local for every other model;
* ``local``: ``recsys_core.evaluation.evaluate`` on pandas frames;
* ``spark``: ``recsys_core.spark.evaluation`` on Spark DataFrames read from the split's Parquet
  files; it scores the factor models (any model that keeps ``user_factors_`` and
  ``item_factors_``).

Both engines compute the same metrics under the same names (checked to 1e-6 by the tests), so the
gate reads either. Baselines and champions are always scored locally: they are small models
re-scored on the same split, by the same definitions.
"""

from __future__ import annotations

from typing import Literal, get_args

from recsys_core.exceptions import ConfigError
from recsys_core.models.base import Recommender
from recsys_core.models.biased_factors import BiasedFactors

EvaluationEngine = Literal["auto", "local", "spark"]
ENGINES: tuple[str, ...] = get_args(EvaluationEngine)
SPARK_PREFIX = "spark-"
"""The registry names of the models fitted by Spark start with this."""


def is_spark_model(model_name: str) -> bool:
    """Whether the model of that registry name is fitted by Spark (``spark-als``, ...)."""
    return model_name.startswith(SPARK_PREFIX)


def scores_in_spark(model_class: type[Recommender]) -> bool:
    """Whether the Spark evaluator can score models of ``model_class``, known before fitting.

    It scores what it can rebuild from factors alone: the biased factor models
    (``mu + b_u + b_i + p_u . q_i``: ``sgd-mf``, ``als``, ``spark-als``, ...) and the ranking
    models that keep user and item factors (``p_u . q_i``: ``implicit-als``,
    ``spark-als-implicit``, ...). A rating model whose prediction holds more than its factors
    (``svdpp``'s implicit term) is scored locally.
    """
    if issubclass(model_class, BiasedFactors):
        return True
    documented: set[str] = set()
    for cls in model_class.__mro__:
        documented.update(vars(cls).get("state_docs", {}))
    return not model_class.predicts_ratings and {"user_factors_", "item_factors_"} <= documented


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
