import pytest

from recsys_core.evaluation.evaluate import evaluate
from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_ranks_close_to_popularity(small):
    # item choice in the synthetic data follows popularity only, so popularity is the bar
    pop = evaluate(create("popularity").fit(small.data), small.train, small.test)
    ease = evaluate(create("ease").fit(small.data), small.train, small.test)
    assert ease.metrics["ndcg_at_10"] > 0.8 * pop.metrics["ndcg_at_10"]


def test_memory_guard_names_items_and_memory(tiny):
    with pytest.raises(ConfigError, match=r"ease needs about .* GiB for its \d+ x \d+ item"):
        create("ease", {"max_bytes": 1000}).fit(tiny.data)


def test_config_ranges():
    with pytest.raises(ConfigError, match="reg=0"):
        create("ease", {"reg": 0})
