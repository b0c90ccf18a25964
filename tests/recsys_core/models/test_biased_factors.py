import numpy as np

from recsys_core.models.biased_factors import (
    predict_biased_factors,
    predict_biases,
    score_biases,
)

MU = 3.5
BU = np.array([0.5, -0.5])
BI = np.array([0.25, 0.0, -0.25])
P = np.array([[1.0, 0.0], [0.0, 2.0]])
Q = np.array([[1.0, 1.0], [0.5, 0.0], [0.0, 0.5]])


def test_biases_with_unknown_indices_counting_zero():
    u = np.array([0, 1, -1, 0, -1])
    i = np.array([0, 2, 1, -1, -1])
    np.testing.assert_allclose(predict_biases(MU, BU, BI, u, i), [4.25, 2.75, 3.5, 4.0, 3.5])


def test_factors_add_the_dot_product_of_known_pairs_only():
    u = np.array([0, 1, -1, 0])
    i = np.array([0, 2, 0, -1])
    got = predict_biased_factors(MU, BU, BI, P, Q, u, i)
    np.testing.assert_allclose(got, [4.25 + 1.0, 2.75 + 1.0, 3.75, 4.0])


def test_scores_of_every_item_match_the_pairs():
    scores = score_biases(MU, BU, BI, np.array([1, 0]))
    assert scores.shape == (2, 3)
    np.testing.assert_allclose(
        scores[0], predict_biases(MU, BU, BI, np.array([1, 1, 1]), np.arange(3))
    )


def _fitted_sgd_mf(biased: bool):
    import pandas as pd

    from recsys_core.features.matrix import Interactions
    from recsys_core.models import create

    rng = np.random.default_rng(5)
    n_users, n_items = 30, 12
    rows = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.4]
    rows += [(0, i) for i in range(n_items)]  # user 0 has seen every item
    frame = pd.DataFrame(rows, columns=["user", "item"]).drop_duplicates()
    frame = frame.assign(
        user=frame["user"].astype(str),
        item=frame["item"].astype(str),
        rating=rng.integers(1, 6, len(frame)).astype(float),
        timestamp=np.arange(len(frame)),
    )
    data = Interactions.from_frame(frame)
    return create("sgd-mf", {"factors": 4, "epochs": 2, "biased": biased}).fit(data)


def _reference_top_k(scores: np.ndarray, seen, k: int):
    """Each row fully sorted (ties to the lower item), seen items left out, padded to k."""
    out_i = np.full((scores.shape[0], k), -1)
    out_s = np.full((scores.shape[0], k), -np.inf)
    for r, row in enumerate(scores.astype(np.float64)):
        banned = set(seen[r].indices.tolist())
        ok = sorted((j for j in range(row.size) if j not in banned), key=lambda j: (-row[j], j))
        out_i[r, : len(ok[:k])] = ok[:k]
        out_s[r, : len(ok[:k])] = row[ok[:k]]
    return out_i, out_s


def test_factor_models_top_k_is_the_sort_of_their_float32_scores():
    from recsys_core.models.biased_factors import factor_scores

    for biased in (True, False):
        model = _fitted_sgd_mf(biased)
        users = np.array([3, 0, -1, 7, 0, 29, 11])
        known = users[users >= 0]
        seen = model.seen_[known]
        for k in (1, 5, 12, 15):  # 15: more slots than any user's unseen items
            # batches of 2: the reused block of the previous batch must not leak into the next
            items, scores = model.recommend_idx(
                users, k, exclude=model.exclusion_matrix(users, users.astype(str)), batch_size=2
            )
            ref_items, ref_scores = _reference_top_k(factor_scores(model.factors(), known), seen, k)
            np.testing.assert_array_equal(items[users >= 0], ref_items)
            np.testing.assert_array_equal(scores[users >= 0], ref_scores)
            assert (items[users == 0] == -1).all()  # every item seen: nothing left to rank
            assert (items[users == -1][0, : min(k, 12)] >= 0).all()  # popularity for the cold
