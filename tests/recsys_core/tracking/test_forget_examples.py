"""Input examples and batch samples: no real user id beside a model, and old examples scrubbed."""

import json

import pandas as pd

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features.matrix import Interactions
from recsys_core.models.registry import create
from recsys_core.serving.batch import numbered_users
from recsys_core.tracking.forget_versions import rewrite_example
from recsys_core.tracking.pyfunc import EXAMPLE_USER, RecommenderPyfunc, example


def test_the_input_example_has_the_synthetic_user_and_known_items(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"model": "sgd-mf"}))
    (tmp_path / "item_ids.json").write_text(json.dumps(["i1", "i2", "i3", "i4"]))
    (tmp_path / "user_ids.json").write_text(json.dumps(["alice", "bob", "carol"]))
    frame = example(tmp_path)
    assert frame["user"].tolist() == [EXAMPLE_USER] * 3
    assert frame["item"].tolist() == ["i1", "i2", "i3"]


def test_a_ranking_model_gets_an_example_that_asks_for_a_list_and_answers_it(tmp_path):
    # pairs would ask ease for ratings it cannot predict: MLflow's check of the example failed
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    folder = create("ease").fit(data).save(tmp_path / "ease")
    frame = example(folder)
    assert list(frame.columns) == ["user"] and frame["user"].tolist() == [EXAMPLE_USER]
    pyfunc = RecommenderPyfunc()
    pyfunc.load_context(type("Context", (), {"artifacts": {"model_dir": str(folder)}})())
    answer = pyfunc.predict(None, frame, {"k": 3})
    assert answer["user"].tolist() == [EXAMPLE_USER] * 3 and answer["item"].notna().all()


def test_an_example_logged_with_real_ids_loses_the_forgotten_ones(tmp_path):
    # the two files MLflow writes: a pandas split frame, and the serving payload around it
    split = {"columns": ["user", "item"], "data": [["alice", "i1"], ["bob", "i2"]]}
    plain, serving = tmp_path / "input_example.json", tmp_path / "serving_input_example.json"
    plain.write_text(json.dumps(split))
    serving.write_text(json.dumps({"dataframe_split": split}))
    assert rewrite_example(plain, ["alice"]) == 1
    assert rewrite_example(serving, ["alice", "nobody"]) == 1
    assert json.loads(plain.read_text())["data"] == [[EXAMPLE_USER, "i1"], ["bob", "i2"]]
    assert "alice" not in serving.read_text() and "bob" in serving.read_text()
    before = serving.stat().st_mtime_ns
    assert rewrite_example(serving, ["alice"]) == 0  # idempotent: nothing left to replace
    assert serving.stat().st_mtime_ns == before


def test_a_batch_sample_numbers_its_users():
    frame = pd.DataFrame(
        {
            "user": ["u9", "u9", "u3", "u9"],
            "rank": [1, 2, 1, 3],
            "item": ["a", "b", "c", "d"],
            "score": [1.0, 0.5, 0.9, 0.1],
        }
    )
    out = numbered_users(frame)
    assert out["user"].tolist() == ["user-1", "user-1", "user-2", "user-1"]
    assert out[["rank", "item", "score"]].equals(frame[["rank", "item", "score"]])
