"""Candidate features of a learned ranker, by hand on small blocks."""

import numpy as np
import scipy.sparse as sp

from recsys_core.features import candidates as cf

ITEMS = {name: np.zeros(5, np.float32) for name in cf.ITEM_FEATURES}


def _block(scores, n=3, history=None, genres=None):
    history = sp.csr_matrix((len(scores[0]), 5)) if history is None else sp.csr_matrix(history)
    users = len(scores[0])
    return cf.candidate_features(
        [np.asarray(s, np.float64) for s in scores],
        n,
        history,
        np.ones(users),
        np.zeros(users),
        ITEMS,
        genres=genres,
    )


def test_scores_relative_to_the_users_own():
    # user 0 has item 4 (its own: -inf); user 1 scores every item
    block = _block([[[5.0, 3.0, 4.0, 1.0, -np.inf], [2.0, 2.0, 8.0, 0.0, 1.0]]])
    names = cf.feature_names(["r"], genres=False, years=False, embeddings=False)
    col = {name: block.features[:, n] for n, name in enumerate(names)}
    pairs = list(zip(block.rows.tolist(), block.items.tolist(), strict=True))
    assert pairs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    np.testing.assert_allclose(col["r_gap"], [0, -2, -1, -6, -6, 0])
    # z-score among the user's candidates: user 0's are 5, 3, 4 (mean 4, sd sqrt(2/3))
    np.testing.assert_allclose(col["r_z"][:3], np.array([1, -1, 0]) / np.sqrt(2 / 3), rtol=1e-6)
    np.testing.assert_allclose(col["r_z"][3:], np.array([-1, -1, 2]) / np.sqrt(2), rtol=1e-6)
    # the gap to the next better candidate of the same user (0 for the best, and for a tie)
    np.testing.assert_allclose(col["r_next_gap"], [0, 1, 1, 6, 0, 0])


def test_genre_share_is_the_users_genre_mass_on_the_items_genres():
    genres = np.array([[1, 0], [0, 1], [1, 1], [1, 0], [0, 1]], np.float32)
    history = np.array([[1, 0, 0, 1, 1]])  # genre mass: 2 of genre 0, 1 of genre 1
    block = _block([[[-np.inf, 1.0, 2.0, -np.inf, -np.inf]]], n=2, history=history, genres=genres)
    names = cf.feature_names(["r"], genres=True, years=False, embeddings=False)
    share = block.features[:, names.index("genre_share")]
    assert block.items.tolist() == [1, 2]
    np.testing.assert_allclose(share, [1 / 3, 1.0], rtol=1e-6)


def test_an_empty_block():
    block = _block([[[-np.inf] * 5]])
    assert block.features.shape == (0, len(cf.feature_names(["r"], False, False, False)))
