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
