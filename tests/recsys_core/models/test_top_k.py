"""The compiled top-k selection of ranking evaluation and batch scoring."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.models.top_k import top_k, top_k_biased_jobs, top_k_jobs


def _reference(scores: np.ndarray, exclude: sp.csr_matrix, k: int):
    """A full sort of each row (ties to the lower column), excluded and non-finite left out."""
    out_i = np.full((scores.shape[0], k), -1)
    out_s = np.full((scores.shape[0], k), -np.inf)
    for r, row in enumerate(scores.astype(np.float64)):
        banned = set(exclude[r].indices.tolist())
        ok = [j for j in range(row.size) if np.isfinite(row[j]) and j not in banned]
        ok.sort(key=lambda j: (-row[j], j))
        out_i[r, : len(ok[:k])] = ok[:k]
        out_s[r, : len(ok[:k])] = row[ok[:k]]
    return out_i, out_s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_k_is_a_full_sort_cut_at_k(dtype):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, (60, 300)).astype(dtype)  # many ties
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    scores[rng.random(scores.shape) < 0.02] = np.nan
    exclude = sp.random(60, 300, density=0.1, format="csr", random_state=1)
    for k in (1, 10, 299, 300):
        items, values = top_k(scores, k, exclude)
        ref_items, ref_values = _reference(scores, exclude, k)
        np.testing.assert_array_equal(items, ref_items)
        np.testing.assert_array_equal(values, ref_values)


def test_rows_fewer_finite_than_k_are_padded_and_one_row_serves_many():
    scores = np.array([[-np.inf, 2.0, np.nan, 1.0]])
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]))
    items = np.full((3, 3), -7, np.int64)
    values = np.zeros((3, 3))
    # rows 0 and 2 of the output from the one score row; row 1 untouched
    top_k_jobs(scores, np.array([0, 0]), np.array([0, 2]), exclude, items, values)
    np.testing.assert_array_equal(items, [[1, 3, -1], [-7, -7, -7], [1, 3, -1]])
    np.testing.assert_array_equal(values[0], [2.0, 1.0, -np.inf])
    top_k_jobs(scores, np.array([0]), np.array([1]), exclude, items, values)
    np.testing.assert_array_equal(items[1], [3, -1, -1])


def test_biased_selection_is_the_selection_of_the_biased_block():
    rng = np.random.default_rng(3)
    block = rng.integers(-5, 5, (40, 200)).astype(np.float32)  # ties after the biases too
    item_bias = rng.integers(-2, 3, 200).astype(np.float32)
    row_bias = rng.integers(-2, 3, 40).astype(np.float32)
    exclude = sp.random(50, 200, density=0.2, format="lil", random_state=2)
    exclude[7] = 1.0  # a user who has seen every item: an empty list
    exclude = sp.csr_matrix(exclude)
    dest = rng.permutation(50)[:40]
    biased = (block + item_bias[None, :]) + row_bias[:, None]
    for k in (1, 10, 200, 250):  # 250: more slots than items
        items = np.full((50, k), -7, np.int64)
        values = np.zeros((50, k))
        top_k_biased_jobs(block, item_bias, row_bias, dest, exclude, items, values)
        ref_items, ref_values = _reference(biased, exclude[dest], k)
        np.testing.assert_array_equal(items[dest], ref_items)
        np.testing.assert_array_equal(values[dest], ref_values)
        untouched = np.setdiff1d(np.arange(50), dest)
        assert (items[untouched] == -7).all()
    if 7 in dest:
        assert (items[7] == -1).all()
