"""A factor model's test metrics computed in Spark, for test splits too large for one machine.

``evaluate_in_spark(model, train, test)`` takes the train and test splits as Spark DataFrames of
raw ids (``user``, ``item``, ``rating``; read from Parquet locally or from ``s3a://``) and a
fitted factor model (``spark-als``, ``spark-als-implicit``, ``als``, ``sgd-mf``, ``implicit-als``,
...: see ``recsys_core.spark.engine.scores_in_spark``). ``spark_evaluation`` adds the counts
``evaluate`` reports (test rows, cold users and items). Nothing per rating comes back to the
driver:

* ids become indices by joins with the model's vocabularies (sent to Spark as small tables);
* rating metrics: each test pair's prediction ``mu + b_u + b_i + p_u . q_i`` is computed in SQL
  (a pair with a user or item the model does not know gets the model's bias fallback, as in
  ``predict_idx``), clipped to the training rating scale, then scored by Spark's
  ``RegressionEvaluator`` (``rmse``, ``mae``) and, per population, by SQL aggregates;
* populations (``recsys_core.evaluation.metrics``): a test user is warm when ``train`` holds a
  row of theirs, an item cold when it holds none (joins with the distinct ids of ``train``);
  every metric is reported for ``warm`` and ``cold`` users beside the plain (``all``) names,
  with the populations' sizes, as ``evaluate`` reports them;
* ranking metrics: the item factors, biases and popularity are broadcast; each partition of test
  users scores every item with numpy, masks the user's training items (joined from ``train``)
  and keeps the top ``k`` with the same routine as ``Recommender.recommend_idx`` (cold users are
  ranked by popularity, as there); Spark's ``RankingEvaluator`` then computes ``precision``,
  ``recall``, ``ndcg`` and ``map`` at ``k``, and SQL the ``hit_rate`` and ``coverage``.

Definitions: those of ``recsys_core.evaluation.metrics`` (binary relevance; a test item the model
never saw stays relevant and counts as a miss). Spark's ``RankingMetrics`` uses the same ones for
binary labels (precision divides by ``k``, NDCG's ideal DCG and MAP's normalizer run over
``min(k, |relevant|)``), so on the same split both evaluations give the same figures; the tests
check it to 1e-6. On a cluster, the executors need recsys installed (they run the scoring).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys_core.evaluation.evaluate import EvaluationResult, check_k
from recsys_core.exceptions import ConfigError, DataError, ModelCapabilityError
from recsys_core.models.base import Recommender, top_k_rows
from recsys_core.models.biased_factors import BiasedFactors, score_biases

_RANKING: dict[str, Any] = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}


def evaluate_in_spark(
    model: Recommender, train: Any, test: Any, **options: Any
) -> dict[str, float]:
    """Metrics of ``model`` on ``test`` computed by Spark, named as ``evaluate`` names them
    (``rmse``, ``mae``, ``ndcg_at_10``, ...); ``train``'s items stay out of each user's list.
    ``options``: those of :func:`spark_evaluation` (``k``, ``relevance_threshold``, ``spark``,
    ``batch_size``)."""
    return spark_evaluation(model, train, test, **options).metrics


def spark_evaluation(
    model: Recommender,
    train: Any,
    test: Any,
    *,
    k: int = 10,
    relevance_threshold: float | None = None,
    spark: Any = None,
    batch_size: int = 256,
) -> EvaluationResult:
    """:func:`evaluate_in_spark`'s metrics with the counts ``evaluate`` reports beside them
    (``test_rows``, ``cold_users``, ``cold_items``, ``cold_user_rows``, ``cold_item_rows``),
    counted in Spark too. No predictions nor lists come back (see :func:`prediction_sample`)."""
    from pyspark.sql import functions as F

    from recsys_core.spark.engine import scores_in_spark
    from recsys_core.spark.session import spark_session

    k = check_k(k)
    if not scores_in_spark(type(model)):
        raise ModelCapabilityError(
            f"{type(model).__name__} is not a factor model the Spark evaluator can rebuild "
            "(biased factors, or user_factors_/item_factors_ of a ranking model: spark-als, als, "
            "sgd-mf, implicit-als, ...): use recsys_core.evaluation"
        )
    for name, frame in (("train", train), ("test", test)):
        missing = {"user", "item", "rating"} - set(frame.columns)
        if missing:
            raise ConfigError(
                f"the {name} DataFrame lacks column(s) {sorted(missing)!r}; it "
                "needs user, item and rating"
            )
    spark = spark or spark_session()
    users = spark.createDataFrame(
        pa.table(
            {
                "user": pa.array(model.user_vocab_.ids.astype(str)),
                "u": np.arange(model.n_users, dtype=np.int32),
                "uf": pa.array(list(np.asarray(model.user_factors_, np.float64))),  # type: ignore[attr-defined]
                "bu": _user_bias(model),
                "fbu": _fallback_user_bias(model),
            }
        )
    )
    items = spark.createDataFrame(
        pa.table(
            {
                "item": pa.array(model.item_vocab_.ids.astype(str)),
                "i": np.arange(model.n_items, dtype=np.int32),
            }
        )
    )
    test = test.select(
        F.col("user").cast("string"), F.col("item").cast("string"), F.col("rating").cast("double")
    )
    train = train.select(F.col("user").cast("string"), F.col("item").cast("string"))
    indexed = (
        test.join(users, "user", "left")
        .join(items, "item", "left")
        .join(train.select("user").distinct().withColumn("warm", F.lit(True)), "user", "left")
        .join(train.select("item").distinct().withColumn("known_item", F.lit(True)), "item", "left")
        .withColumn("warm", F.coalesce("warm", F.lit(False)))
        .withColumn("cold_item", F.col("known_item").isNull())
    )
    counts, sizes = _counts(indexed)
    if counts["test_rows"] == 0:
        raise ConfigError("the test set is empty; nothing to evaluate")
    if counts["non_finite"]:
        raise DataError(
            f"the test set has {counts['non_finite']} rating(s) that are null or not finite "
            "numbers; metrics would be NaN. Drop or fix those rows"
        )
    del counts["non_finite"]
    out: dict[str, float] = dict(sizes)
    if model.predicts_ratings:
        out.update(_rating_metrics(spark, model, indexed))
    ranking, ranked_users = _ranking_metrics(
        spark, model, train, indexed, users, items, k, relevance_threshold, batch_size
    )
    out.update(ranking)
    if ranked_users:
        counts["ranked_users"] = ranked_users
    return EvaluationResult(out, counts)


def prediction_sample(
    model: Recommender, test: Any, *, rows: int = 100_000, seed: int = 0
) -> pd.DataFrame:
    """About ``rows`` test rows drawn at random by Spark (all of them when the test set is
    smaller), with the model's predictions: ``user``, ``item``, ``rating``, ``prediction``.
    What a rating-distribution plot needs, without collecting the whole test set."""
    from pyspark.sql import functions as F

    test = test.select(
        F.col("user").cast("string"), F.col("item").cast("string"), F.col("rating").cast("double")
    )
    total = test.count()
    if total > rows:  # Bernoulli sampling, a little above the target, then cut to it
        test = test.sample(fraction=min(1.0, 1.1 * rows / total), seed=seed).limit(rows)
    frame = test.toPandas()
    frame["prediction"] = model.predict(frame["user"], frame["item"])
    return frame


def check_test_rows(
    test: Any, rating_scale: tuple[float, float], *, origin: str = "the test set"
) -> None:
    """Refuse what recsys's own reading of a file refuses, for a test set Spark reads and
    scores as it is: a missing column, a rating off ``rating_scale``, a (user, item) pair
    rated more than once (no duplicates policy runs in Spark). Two Spark jobs, no row
    collected."""
    from pyspark.sql import functions as F

    missing = {"user", "item", "rating"} - set(test.columns)
    if missing:
        raise ConfigError(
            f"{origin} lacks column(s) {sorted(missing)!r}; it needs user, item "
            "and rating (map other names with a column mapping such as "
            "user=userId,item=movieId)"
        )
    low, high = rating_scale
    off = test.where((F.col("rating") < low) | (F.col("rating") > high)).count()
    if off:
        raise DataError(
            f"{origin} has {off} rating(s) off the scale [{low!r}, {high!r}]; fix "
            "those rows or set the rating scale"
        )
    repeated = test.groupBy("user", "item").count().where(F.col("count") > 1).count()
    if repeated:
        raise DataError(
            f"{origin} rates {repeated} (user, item) pair(s) more than once, and "
            "Spark scores the rows as they are; keep one row a pair, or evaluate "
            "locally, where the duplicates policy resolves them"
        )


def _counts(indexed: Any) -> tuple[dict[str, int], dict[str, float]]:
    """Test rows, cold rows and distinct cold ids (and bad ratings), and the populations' sizes
    (``warm/users``, ..., ``cold_items/share``), in one Spark job."""
    from pyspark.sql import functions as F

    warm = F.col("warm")
    row = indexed.agg(
        F.countDistinct("user").alias("all/users"),
        F.countDistinct(F.when(warm, F.col("user"))).alias("warm/users"),
        F.count(F.when(warm, 1)).alias("warm/rows"),
        F.countDistinct(F.when(F.col("cold_item"), F.col("item"))).alias("cold_items/items"),
        F.count(F.when(F.col("cold_item"), 1)).alias("cold_items/rows"),
        F.count(F.lit(1)).alias("test_rows"),
        F.count(F.when(F.col("u").isNull(), 1)).alias("cold_user_rows"),
        F.count(F.when(F.col("i").isNull(), 1)).alias("cold_item_rows"),
        F.countDistinct(F.when(F.col("u").isNull(), F.col("user"))).alias("cold_users"),
        F.countDistinct(F.when(F.col("i").isNull(), F.col("item"))).alias("cold_items"),
        F.count(
            F.when(
                F.col("rating").isNull()
                | F.isnan("rating")
                | F.col("rating").isin(float("inf"), float("-inf")),
                1,
            )
        ).alias("non_finite"),
    ).first()
    values = {name: int(row[name]) for name in row.asDict()}
    n = values["test_rows"]
    sizes: dict[str, float] = {
        "all/users": values["all/users"],
        "all/rows": n,
        "warm/users": values["warm/users"],
        "warm/rows": values["warm/rows"],
        "cold/users": values["all/users"] - values["warm/users"],
        "cold/rows": n - values["warm/rows"],
        "cold_items/items": values["cold_items/items"],
        "cold_items/rows": values["cold_items/rows"],
        "cold_items/share": values["cold_items/rows"] / n if n else 0.0,
    }
    return {name: v for name, v in values.items() if name not in sizes}, sizes


def _fallback_user_bias(model: Recommender) -> np.ndarray:
    bias = getattr(model, "fallback_user_bias_", None)
    return np.zeros(model.n_users) if bias is None else np.asarray(bias, np.float64)


def _user_bias(model: Recommender) -> np.ndarray:
    if isinstance(model, BiasedFactors):
        return np.asarray(model.user_bias_, np.float64)
    return np.zeros(model.n_users)


def _rating_metrics(spark: Any, model: Recommender, indexed: Any) -> dict[str, float]:
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    assert isinstance(model, BiasedFactors)  # the factor models that predict ratings
    item_side = spark.createDataFrame(
        pa.table(
            {
                "i": np.arange(model.n_items, dtype=np.int32),
                "vf": pa.array(list(np.asarray(model.item_factors_, np.float64))),
                "bi": np.asarray(model.item_bias_, np.float64),
            }
        )
    )
    dot = F.aggregate(
        F.zip_with("uf", "vf", lambda a, b: a * b), F.lit(0.0), lambda acc, x: acc + x
    )
    low, high = (float(x) for x in model.rating_scale_)
    pred = (
        F.lit(float(model.mu_))
        + F.coalesce("bu", F.lit(0.0))
        + F.coalesce("bi", F.lit(0.0))
        + F.coalesce(dot, F.lit(0.0))
    )
    if hasattr(model, "fallback_item_bias_"):  # the bias fallback of a pair with an unknown id
        fallback = (
            F.lit(float(model.fallback_mu_))
            + F.coalesce("fbu", F.lit(0.0))
            + F.coalesce("fbi", F.lit(0.0))
        )
        pred = F.when(F.col("u").isNull() | F.col("i").isNull(), fallback).otherwise(pred)
        item_side = item_side.join(
            spark.createDataFrame(
                pa.table(
                    {
                        "i": np.arange(model.n_items, dtype=np.int32),
                        "fbi": np.asarray(model.fallback_item_bias_, np.float64),
                    }
                )
            ),
            "i",
        )
    scored = indexed.join(item_side, "i", "left").withColumn(
        "prediction", F.least(F.greatest(pred, F.lit(low)), F.lit(high))
    )
    out = {
        name: float(
            RegressionEvaluator(
                metricName=name, labelCol="rating", predictionCol="prediction"
            ).evaluate(scored)
        )
        for name in ("rmse", "mae")
    }
    err = F.col("prediction") - F.col("rating")
    groups = {"warm/": F.col("warm"), "cold/": ~F.col("warm"), "cold_items/": F.col("cold_item")}
    row = scored.agg(
        *[
            agg
            for prefix, rows in groups.items()
            for agg in (
                F.count(F.when(rows, 1)).alias(f"{prefix}n"),
                F.avg(F.when(rows, err * err)).alias(f"{prefix}mse"),
                F.avg(F.when(rows, F.abs(err))).alias(f"{prefix}mae"),
            )
        ]
    ).first()
    for prefix in groups:
        if row[f"{prefix}n"]:  # an empty population has no metric
            out[f"{prefix}rmse"] = float(np.sqrt(row[f"{prefix}mse"]))
            out[f"{prefix}mae"] = float(row[f"{prefix}mae"])
    return out


def _ranking_metrics(
    spark: Any,
    model: Recommender,
    train: Any,
    indexed: Any,
    users: Any,
    items: Any,
    k: int,
    threshold: float | None,
    batch_size: int,
) -> tuple[dict[str, float], int]:
    """The ranking metrics, and the number of users ranked (those with a relevant test item)."""
    from pyspark.ml.evaluation import RankingEvaluator
    from pyspark.sql import functions as F

    relevant = indexed if threshold is None else indexed.where(F.col("rating") >= threshold)
    # relevant items as codes: the item's index, or for an item the model never saw a distinct
    # negative code (never recommended, so always a miss, and counted once per user)
    code = F.coalesce(
        F.col("i").cast("double"), -2.0 - (F.xxhash64("item") % (1 << 47)).cast("double")
    )
    labels = relevant.groupBy("user").agg(
        F.collect_set(code).alias("label"), F.first("warm").alias("warm")
    )
    seen = (
        train.select(F.col("user").cast("string"), F.col("item").cast("string"))
        .join(items, "item")
        .groupBy("user")
        .agg(F.collect_list("i").alias("seen"))
    )
    todo = (
        labels.join(users.select("user", "u", "uf", "bu"), "user", "left")
        .join(seen, "user", "left")
        .select("user", "u", "uf", "bu", "seen")
    )
    ctx = spark.sparkContext
    side = ctx.broadcast(_item_side(model))
    kk = min(k, model.n_items)

    def top_k(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        V, bi, popularity, mu, biased = side.value
        for frame in batches:
            for start in range(0, len(frame), batch_size):
                part = frame.iloc[start : start + batch_size]
                scores = np.empty((len(part), V.shape[0]), dtype=np.float64)
                known = part["u"].notna().to_numpy()
                if known.any():
                    U = np.stack(list(part["uf"].to_numpy()[known]))
                    if biased:
                        bu = part["bu"].to_numpy(np.float64)[known]
                        scores[known] = score_biases(mu, bu, bi, np.arange(bu.size)) + U @ V.T
                    else:  # float32 factors, as the model scores them
                        scores[known] = (U.astype(np.float32) @ V.T).astype(np.float64)
                scores[~known] = popularity
                for row, s in enumerate(part["seen"]):
                    if s is not None and len(s):
                        scores[row, np.asarray(s, np.int64)] = -np.inf
                top, _ = top_k_rows(scores, kk)
                yield pd.DataFrame(
                    {
                        "user": part["user"].to_numpy(),
                        "prediction": [t[t >= 0].astype(np.float64) for t in top],
                    }
                )

    recs = todo.mapInPandas(top_k, "user string, prediction array<double>")
    ranked = recs.join(labels, "user").cache()
    hit = (F.size(F.array_intersect("prediction", "label")) > 0).cast("double")
    populations = {"": F.lit(True), "warm/": F.col("warm"), "cold/": ~F.col("warm")}
    out: dict[str, float] = {}
    try:
        row = ranked.agg(
            *[
                agg
                for prefix, rows in populations.items()
                for agg in (
                    F.count(F.when(rows, 1)).alias(f"{prefix}n"),
                    F.avg(F.when(rows, hit)).alias(f"{prefix}hit_rate"),
                )
            ]
        ).first()
        if not row["n"]:  # no relevant test item: no ranking metric, as in ``evaluate``
            return {}, 0
        covered = (
            ranked.select("warm", F.explode("prediction").alias("i"))
            .distinct()
            .groupBy("warm")
            .count()
            .collect()
        )
        by_warm = {r["warm"]: r["count"] for r in covered}
        n_covered = ranked.select(F.explode("prediction").alias("i")).distinct().count()
        for prefix, rows in populations.items():
            if not row[f"{prefix}n"]:  # an empty population has no metric
                continue
            part = ranked.where(rows)
            out.update(
                {
                    f"{prefix}{name}_at_{k}": float(
                        RankingEvaluator(
                            metricName=metric, k=k, labelCol="label", predictionCol="prediction"
                        ).evaluate(part)
                    )
                    for name, metric in _RANKING.items()
                }
            )
            out[f"{prefix}hit_rate_at_{k}"] = float(row[f"{prefix}hit_rate"])
            n = n_covered if not prefix else by_warm.get(prefix == "warm/", 0)
            out[f"{prefix}coverage_at_{k}"] = n / model.n_items if model.n_items else 0.0
    finally:
        ranked.unpersist()
        side.unpersist()
    return out, int(row["n"])


def _item_side(model: Recommender) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """What every executor needs to score all items: factors, biases, popularity, mu."""
    if isinstance(model, BiasedFactors):
        return (
            np.asarray(model.item_factors_, np.float64),
            np.asarray(model.item_bias_, np.float64),
            np.asarray(model.item_popularity_),
            float(model.mu_),
            True,
        )
    factors: np.ndarray = model.item_factors_  # type: ignore[attr-defined]  # checked by the caller
    return (
        np.asarray(factors, np.float32),
        np.zeros(model.n_items),
        np.asarray(model.item_popularity_),
        0.0,
        False,
    )
