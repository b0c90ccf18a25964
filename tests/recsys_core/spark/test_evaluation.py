"""The Spark evaluator against recsys's own evaluation on the same split (one shared local[2]
session: tests/conftest.py sets the master, ``spark_session`` reuses the JVM)."""

import numpy as np
import pandas as pd
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.evaluation import evaluate
from recsys_core.exceptions import ConfigError, DataError, ModelCapabilityError
from recsys_core.features import Interactions
from recsys_core.features.splits import split
from recsys_core.models import create
from recsys_core.spark.evaluation import evaluate_in_spark, prediction_sample, spark_evaluation
from recsys_core.spark.session import spark_session

SCHEMA = "user string, item string, rating double"


@pytest.fixture(scope="module")
def splits():
    s = split(generate(config_for("small")).interactions)
    test = s.test[["user", "item", "rating"]]
    # a user and an item the model never saw: the fallback and the always-missed item
    cold = pd.DataFrame(
        {
            "user": ["cold-user", "cold-user", s.train["user"].iloc[0]],
            "item": [s.train["item"].iloc[0], "cold-item", "cold-item"],
            "rating": [4.0, 5.0, 3.0],
        }
    )
    return s.train, pd.concat([test, cold], ignore_index=True)


@pytest.mark.parametrize(
    ("name", "params", "threshold"),
    [
        ("spark-als", {"rank": 4, "maxIter": 3}, None),
        ("spark-als-implicit", {"rank": 4, "maxIter": 3}, 4.0),
    ],
)
def test_spark_figures_equal_recsys_evaluation(splits, name, params, threshold):
    train, test = splits
    model = create(name, params).fit(Interactions.from_frame(train))
    want = evaluate(model, train, test, k=5, relevance_threshold=threshold)
    assert want.counts["cold_users"] >= 1 and want.counts["cold_items"] >= 1
    spark = spark_session()
    triples = train[["user", "item", "rating"]]
    test_df = spark.createDataFrame(test)
    result = spark_evaluation(
        model,
        spark.createDataFrame(triples),
        test_df,
        k=5,
        relevance_threshold=threshold,
        batch_size=7,
    )
    got = result.metrics
    assert set(got) == set(want.metrics)
    for metric, value in want.metrics.items():
        assert got[metric] == pytest.approx(value, abs=1e-6), metric
    assert 0 < got["ndcg_at_5"] < 1 and (name != "spark-als" or 0.5 < got["rmse"] < 2)
    assert result.counts == want.counts
    if model.predicts_ratings:  # the sample a rating-distribution plot is drawn from
        sample = prediction_sample(model, test_df, rows=50, seed=1)
        assert 0 < len(sample) <= 50 and list(sample.columns) == [
            "user",
            "item",
            "rating",
            "prediction",
        ]
        np.testing.assert_allclose(
            sample["prediction"], model.predict(sample["user"], sample["item"])
        )
        assert len(prediction_sample(model, test_df, rows=len(test) + 1)) == len(test)


def test_bad_inputs_are_named(splits):
    train, test = splits
    spark = spark_session()
    train_df = spark.createDataFrame(train[["user", "item", "rating"]])
    pop = create("popularity", {}).fit(Interactions.from_frame(train))
    with pytest.raises(ModelCapabilityError, match="not a factor model the Spark evaluator"):
        evaluate_in_spark(pop, train_df, spark.createDataFrame(test))
    model = create("spark-als", {"rank": 2, "maxIter": 1}).fit(Interactions.from_frame(train))
    with pytest.raises(ConfigError, match=r"test DataFrame lacks column\(s\) \['rating'\]"):
        evaluate_in_spark(model, train_df, spark.createDataFrame(test.drop(columns="rating")))
    with pytest.raises(ConfigError, match="the test set is empty"):
        evaluate_in_spark(model, train_df, spark.createDataFrame(test.iloc[:0], schema=SCHEMA))
    bad = test.head(3).assign(rating=[4.0, float("nan"), 3.0])
    with pytest.raises(DataError, match="1 rating"):
        evaluate_in_spark(model, train_df, spark.createDataFrame(bad, schema=SCHEMA))
    assert np.isfinite(model.user_factors_).all()
