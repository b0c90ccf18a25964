"""Matrix factorization by Spark MLlib's ALS (``spark-als``, ``spark-als-implicit``).

Spark's ``pyspark.ml.recommendation.ALS`` (block ALS with weighted-lambda regularization, Zhou
et al. 2008; implicit mode: Hu, Koren & Volinsky, ICDM 2008) for data that outgrows one machine:
the same model runs on ``local[*]`` or on a cluster (``RECSYS_SPARK_MASTER``, see
``recsys_core.spark.session``). Hyperparameters keep Spark's names.

How it fits the rest of recsys:

* the training triples go to Spark as Parquet, already in index space (int32 user and item
  indices from the model's id vocabularies, float32 values), written by pyarrow and read by
  Spark's executors: nothing large travels through the driver's Python-JVM bridge;
* after ``fit`` only the two factor tables come back to the driver (users x rank and
  items x rank, the only data collected whole) and become the numpy arrays every factor model
  keeps; Spark is not needed to predict, recommend, save, load or serve;
* ``spark-als`` (explicit) is a ``BiasedFactors`` model with ``mu_`` the global mean it
  subtracted (``center``) and zero user/item biases (Spark's ALS has none), so the manifest and
  the Parquet factor tables rebuild its predictions like those of ``als`` and ``sgd-mf``;
  ``spark-als-implicit`` ranks by ``user_factors_ @ item_factors_.T`` like ``implicit-als``.
* with validation data, the fit reports the validation RMSE computed in Spark (``transform``
  with ``coldStartStrategy``, then ``RegressionEvaluator``) beside the one recomputed from the
  collected factors; the two agree.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig
from recsys_core.models.biased_factors import BiasedFactors, predict_biased_factors
from recsys_core.models.implicit_models import ImplicitFactors
from recsys_core.models.registry import register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)


class SparkALSConfig(ModelConfig):
    """Hyperparameters of Spark's explicit ALS (Spark's names)."""

    rank: int = hp.factors(10, most=2048)
    maxIter: int = hp.sweeps(10)
    regParam: float = hp.weighted_lambda(0.1)
    center: bool = Field(
        True, description="subtract the global mean before factorizing (Spark's ALS has no biases)"
    )
    nonnegative: bool = Field(False, description="constrain the factors to be non-negative")
    coldStartStrategy: Literal["nan", "drop"] = Field(
        "drop", description="users/items unseen in training, in Spark's evaluation: drop or NaN"
    )
    seed: int = hp.seed("of the factor initialization")


class SparkALSImplicitConfig(ModelConfig):
    """Hyperparameters of Spark's implicit-feedback ALS (Spark's names)."""

    rank: int = hp.factors(10, most=2048)
    maxIter: int = hp.sweeps(10)
    regParam: float = hp.weighted_lambda(0.1)
    alpha: float = Field(1.0, ge=0, description="confidence scale: c = 1 + alpha * r")
    use_ratings: bool = Field(False, description="confidence from the rating (else 1 per pair)")
    seed: int = hp.seed("of the factor initialization")


def fit_spark_als(
    data: Interactions, params: dict[str, Any], values: np.ndarray, spark: Any = None
) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    """Fit Spark's ALS on ``(user_idx, item_idx, values)``; returns the user and item factors as
    float64 arrays (row = index; a row Spark did not learn stays zero), the fitted ``ALSModel``
    and the session. ``params`` are ALS's own parameters."""
    from recsys_core.extras import require

    require("pyspark", "spark")  # a missing extra: what to install
    from pyspark.ml.recommendation import ALS

    from recsys_core.spark.session import scratch_dir, spark_session

    spark = spark or spark_session()
    rank = int(params["rank"])
    scratch = scratch_dir()
    with tempfile.TemporaryDirectory(prefix="recsys-spark-", dir=scratch) as tmp:
        if scratch:  # a shared folder: Spark's workers may run as another user
            os.chmod(tmp, 0o755)
        path = Path(tmp) / "ratings.parquet"
        pq.write_table(
            pa.table(
                {
                    "user": data.user_idx.astype(np.int32),
                    "item": data.item_idx.astype(np.int32),
                    "rating": values.astype(np.float32),
                }
            ),
            path,
        )
        ratings = spark.read.parquet(str(path))
        # Spark's default of 10 blocks a side is sized for clusters; on a small input it only
        # adds tasks: one block per half million ratings, up to the default parallelism
        blocks = min(spark.sparkContext.defaultParallelism, len(data) // 500_000 + 1)
        als = ALS(
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            numUserBlocks=blocks,
            numItemBlocks=blocks,
            **params,
        )
        model = als.fit(ratings)
        # the factor tables are small (one row per user/item): the only data collected whole
        U = _factors(model.userFactors, data.n_users, rank)
        V = _factors(model.itemFactors, data.n_items, rank)
    if not (np.isfinite(U).all() and np.isfinite(V).all()):
        raise TrainingError(
            f"spark-als produced non-finite factors (regParam={params.get('regParam')!r}); "
            "raise regParam (such as 0.1) or check the ratings for NaN"
        )
    return U, V, model, spark


def _factors(frame: Any, n: int, rank: int) -> np.ndarray:
    table = frame.toArrow() if hasattr(frame, "toArrow") else None
    if table is not None:
        ids = table.column("id").to_numpy()
        vectors = table.column("features").combine_chunks()
        flat = vectors.flatten().to_numpy(zero_copy_only=False)
    else:  # pragma: no cover - pyspark without toArrow
        pdf = frame.toPandas()
        ids = pdf["id"].to_numpy()
        flat = np.concatenate(pdf["features"].to_numpy()) if len(pdf) else np.empty(0)
    out = np.zeros((n, rank), dtype=np.float64)
    out[np.asarray(ids, np.int64)] = np.asarray(flat, np.float64).reshape(len(ids), rank)
    return out


@register("spark-als")
class SparkALS(BiasedFactors[SparkALSConfig]):
    """Explicit-rating matrix factorization by Spark MLlib's ALS (runs on a Spark cluster)."""

    capabilities = replace(BiasedFactors.capabilities, fitted_in_spark=True)
    mu_: np.float64
    """global mean subtracted before Spark's ALS (0 when center=false)"""
    user_bias_: np.ndarray
    """zero: Spark's ALS learns no biases (kept so the formula is that of als)"""
    item_bias_: np.ndarray
    """zero: Spark's ALS learns no biases (kept so the formula is that of als)"""

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rating = data.rating.astype(np.float64)
        mu = float(rating.mean()) if cfg.center else 0.0
        U, V, model, spark = fit_spark_als(
            data,
            {
                "rank": cfg.rank,
                "maxIter": cfg.maxIter,
                "regParam": cfg.regParam,
                "nonnegative": cfg.nonnegative,
                "coldStartStrategy": cfg.coldStartStrategy,
                "implicitPrefs": False,
                "seed": cfg.seed,
            },
            rating - mu,
        )
        self.mu_ = np.float64(mu)
        self.user_bias_ = np.zeros(data.n_users)
        self.item_bias_ = np.zeros(data.n_items)
        self.user_factors_ = U
        self.item_factors_ = V
        pred = predict_biased_factors(
            mu, self.user_bias_, self.item_bias_, U, V, data.user_idx, data.item_idx
        )
        training.epoch(cfg.maxIter, float(np.mean((rating - pred) ** 2)), self._predict_idx)
        if training.val is not None:
            self.history_[-1]["spark_val_rmse"] = _spark_rmse(spark, model, training, mu)


def _spark_rmse(spark: Any, model: Any, training: Training, mu: float) -> float:
    """RMSE of the validation pairs computed in Spark (``transform`` + ``RegressionEvaluator``),
    predictions clipped to the rating scale like recsys's own."""
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    val = training.val
    assert val is not None
    frame = spark.createDataFrame(
        pa.table(
            {
                "user": val.user.astype(np.int32),
                "item": val.item.astype(np.int32),
                "rating": val.rating.astype(np.float64),
            }
        )
    )
    scored = model.transform(frame).withColumn(
        "prediction", F.least(F.greatest(F.col("prediction") + mu, F.lit(val.low)), F.lit(val.high))
    )
    return float(
        RegressionEvaluator(
            metricName="rmse", labelCol="rating", predictionCol="prediction"
        ).evaluate(scored)
    )


@register("spark-als-implicit")
class SparkALSImplicit(ImplicitFactors[SparkALSImplicitConfig]):
    """Implicit-feedback ALS by Spark MLlib (confidence weighting, Hu et al. 2008)."""

    capabilities = replace(ImplicitFactors.capabilities, fitted_in_spark=True)

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        values = data.rating if cfg.use_ratings else np.ones(len(data))
        U, V, _, _ = fit_spark_als(
            data,
            {
                "rank": cfg.rank,
                "maxIter": cfg.maxIter,
                "regParam": cfg.regParam,
                "alpha": cfg.alpha,
                "implicitPrefs": True,
                "seed": cfg.seed,
            },
            np.asarray(values, np.float64),
        )
        self.user_factors_ = U.astype(np.float32)
        self.item_factors_ = V.astype(np.float32)
        training.epoch(cfg.maxIter, float("nan"))
