"""Explanations in words, with item names from MovieLens-shaped metadata (item, title,
genres): the sentence names titles, the numbers stay in the reasons' fields, and the titles
travel with the saved model (what the service loads)."""

import re

import numpy as np
import pandas as pd
import pytest

from recsys_core.features import Interactions
from recsys_core.features.titles import item_titles
from recsys_core.models import create
from recsys_core.models.base import Recommender
from recsys_core.serving import Scorer
from recsys_core.serving.explain import because, join_names

# u.item of MovieLens 100K: the movies' ids, titles and genres
MOVIES = pd.DataFrame(
    {
        "item": ["50", "100", "181", "1", "127", "98"],
        "title": [
            "Star Wars (1977)",
            "Fargo (1996)",
            "Return of the Jedi (1983)",
            "Toy Story (1995)",
            "Godfather, The (1972)",
            "Silence of the Lambs, The (1991)",
        ],
        "genres": [
            "Action|Adventure|Sci-Fi",
            "Crime|Drama|Thriller",
            "Action|Adventure|Sci-Fi",
            "Animation|Children's|Comedy",
            "Action|Crime|Drama",
            "Drama|Thriller",
        ],
    }
)


def _ratings() -> pd.DataFrame:
    """Fans of Star Wars and Fargo also watched Return of the Jedi; user 'me' did not yet."""
    rows, t = [], 0
    for u in range(40):
        items = ["50", "100", "181"] if u < 30 else ["1", "127", "98"]
        if u % 4 == 0 and u < 30:
            items.append("1")
        for i in items:
            t += 1
            rows.append((f"u{u}", i, 4.0, t))
    rows += [("me", "50", 5.0, t + 1), ("me", "100", 4.0, t + 2)]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


@pytest.fixture(scope="module")
def data():
    return Interactions.from_frame(_ratings(), item_meta=MOVIES)


@pytest.mark.parametrize("name", ["ease", "implicit-als"])
def test_the_sentence_names_the_titles_the_numbers_stay_in_fields(data, name, tmp_path):
    model = create(name, {"factors": 4, "seed": 1} if name == "implicit-als" else {}).fit(data)
    # the served state: what the registry holds and the service loads
    loaded = Recommender.load(model.save(tmp_path / "state"))
    scorer = Scorer(loaded)
    rec = scorer.recommend("me", 1, explain=True)
    top = rec.items[0]
    assert top.item_id == "181" and scorer.item_title("181") == "Return of the Jedi (1983)"
    reasons = top.reasons
    assert {r.title for r in reasons} == {"Star Wars (1977)", "Fargo (1996)"}
    assert {r.item_id for r in reasons} == {"50", "100"}
    sentence = because(reasons)
    assert sentence in (
        "Because you watched Star Wars (1977) and Fargo (1996)",
        "Because you watched Fargo (1996) and Star Wars (1977)",
    )
    # the numbers: in the weight fields, never in the words (the only digits are the years)
    assert all(isinstance(r.weight, float) and r.weight > 0 for r in reasons)
    for text in [sentence, *(r.text for r in reasons)]:
        assert not re.search(r"\d", re.sub(r"\(\d{4}\)", "", text)), text


def test_without_metadata_items_are_named_by_id():
    model = create("ease").fit(Interactions.from_frame(_ratings()))
    assert not hasattr(model, "item_titles_")
    scorer = Scorer(model)
    top = scorer.recommend("me", 1, explain=True).items[0]
    assert scorer.item_title(top.item_id) is None
    assert because(top.reasons) in (
        "Because you interacted with item 50 and item 100",
        "Because you interacted with item 100 and item 50",
    )


def test_a_cold_users_list_says_popular_with_the_count_in_the_field(data):
    scorer = Scorer(create("ease").fit(data))
    top = scorer.recommend("nobody", 1, explain=True).items[0]
    assert because(top.reasons) == "Popular with other users"
    counts = _ratings()["item"].value_counts()
    assert top.reasons[0].weight == counts[top.item_id] == counts.max()  # interactions


def test_titles_follow_the_vocabulary_and_missing_titles_are_empty():
    ids = np.array(["181", "999", "50"])
    assert list(item_titles(ids, MOVIES)) == ["Return of the Jedi (1983)", "", "Star Wars (1977)"]
    assert item_titles(ids, None) is None
    assert item_titles(ids, MOVIES.drop(columns="title")) is None
    assert join_names(["A"]) == "A" and join_names(["A", "B", "C"]) == "A, B and C"
