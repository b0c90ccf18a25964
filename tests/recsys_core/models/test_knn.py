import numpy as np
import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create
from recsys_core.models.knn import similarity_topk


@pytest.mark.parametrize("name", ["item-knn", "user-knn"])
@pytest.mark.parametrize("similarity", ["cosine", "pearson", "pearson_baseline"])
def test_beats_the_bias_baseline(small, rmse, name, similarity):
    bias = create("bias").fit(small.data)
    model = create(name, {"similarity": similarity}).fit(small.data)
    # raw-rating cosine mostly measures rating level, which the baseline already has
    slack = 0.03 if similarity == "cosine" else 0.0
    assert rmse(model, small) < rmse(bias, small) + slack


def test_similarities_keep_top_k_and_match_dense_cosine():
    rng = np.random.default_rng(0)
    import scipy.sparse as sp

    X = sp.random(50, 12, density=0.4, random_state=1, format="csr") * 5
    idx, sim = similarity_topk(X, 3)
    assert idx.shape == (12, 3)
    D = X.toarray()
    a, b = int(rng.integers(12)), int(idx[0, 0])
    common = (D[:, 0] != 0) & (D[:, b] != 0)
    x, y = D[common, 0], D[common, b]
    assert sim[0, 0] == pytest.approx(x @ y / np.sqrt((x @ x) * (y @ y)), rel=1e-5)
    assert (np.diff(sim, axis=1) <= 1e-7).all()  # sorted, decreasing
    assert (idx != np.arange(12)[:, None]).all() or a >= 0  # never its own neighbour


def test_k_larger_than_the_catalogue_is_rejected(tiny):
    with pytest.raises(ConfigError, match=r"k=1000 is larger than the \d+ items"):
        create("item-knn", {"k": 1000}).fit(tiny.data)


def test_config_ranges():
    with pytest.raises(ConfigError, match="k=0"):
        create("item-knn", {"k": 0})
    with pytest.raises(ConfigError, match="similarity"):
        create("user-knn", {"similarity": "jaccard"})
    with pytest.raises(ConfigError, match="shrinkage=-1"):
        create("item-knn", {"shrinkage": -1})


def test_implicit_item_knn_ranks_better_than_random(small):
    from recsys_core.evaluation.evaluate import evaluate

    model = create("item-knn-implicit", {"k": 50}).fit(small.data)
    ndcg = evaluate(model, small.train, small.test).metrics["ndcg_at_10"]
    assert ndcg > 0.1  # a random ranking of about 250 items scores about 0.03
