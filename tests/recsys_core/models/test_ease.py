import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_quality(quality):
    # measured on the fixture: NDCG@10 0.363 against popularity's 0.144 (2.5x)
    model = quality.ranking("ease", {}, times_popularity=1.5)
    assert (model.weights_.diagonal() == 0).all()


def test_memory_guard_names_items_and_memory(tiny):
    with pytest.raises(ConfigError, match=r"ease needs about .* GiB for its \d+ x \d+ item"):
        create("ease", {"max_bytes": 1000}).fit(tiny.data)


def test_config_ranges():
    with pytest.raises(ConfigError, match="reg=0"):
        create("ease", {"reg": 0})
