"""Top-k of blocks of scores: a compiled, parallel partial selection.

Each row keeps its ``k`` best finite scores in a small sorted buffer; an item whose score is not
above the ``k``-th best so far is skipped with one comparison, so a row costs one pass over the
catalogue (no ``argpartition`` copy of the row, no sort of it). Excluded items (a CSR row of
item indices per output row, sorted) are stepped over during the same pass, so the scores are
never written. Ties go to the lower item index. ``-inf`` and NaN never enter a list; slots that
cannot be filled hold item ``-1`` and score ``-inf``.

A job ``b`` reads the row ``rows[b]`` of ``scores`` and writes the output row ``dest[b]`` with
the exclusions of row ``dest[b]``: the same score row (popularity's one list, a baseline's item
biases) serves every user without being copied once per user.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp


@numba.njit(inline="always")
def _offer(s, j, ex, p, best_s, best_i):  # pragma: no cover - compiled
    """Item ``j`` of score ``s`` (above the ``k``-th best) enters the sorted buffer unless it
    is excluded; ``p`` is the cursor in ``ex``, returned moved up to ``j``. Inlined into both
    selections as Numba IR."""
    while p < ex.size and ex[p] < j:
        p += 1
    if p < ex.size and ex[p] == j:
        return p
    pos = best_s.size - 1
    while pos > 0 and best_s[pos - 1] < s:
        best_s[pos] = best_s[pos - 1]
        best_i[pos] = best_i[pos - 1]
        pos -= 1
    best_s[pos] = s
    best_i[pos] = j
    return p


@numba.njit(cache=True, nogil=True)
def _select(row, ex, best_s, best_i):  # pragma: no cover - compiled
    """The ``k = best_s.size`` best finite entries of ``row`` not in ``ex`` (sorted item
    indices), best first, into ``best_s``/``best_i`` (filled with ``-inf``/``-1``)."""
    k = best_s.size
    thr = -np.inf
    p = 0
    for j in range(row.size):
        s = np.float64(row[j])
        if s > thr:  # not below the k-th best, -inf or NaN
            p = _offer(s, j, ex, p, best_s, best_i)
            thr = best_s[k - 1]


@numba.njit(cache=True, nogil=True)
def _job(
    b, scores, rows, dest, ex_indptr, ex_indices, out_items, out_scores
):  # pragma: no cover - compiled
    """Job ``b``: the top-k of score row ``rows[b]`` into output row ``dest[b]``, with the
    exclusions of that output row."""
    d = dest[b]
    _select(
        scores[rows[b]],
        ex_indices[ex_indptr[d] : ex_indptr[d + 1]],
        out_scores[d],
        out_items[d],
    )


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_k_parallel(
    scores, rows, dest, ex_indptr, ex_indices, out_items, out_scores
):  # pragma: no cover - compiled
    for b in numba.prange(rows.size):
        _job(b, scores, rows, dest, ex_indptr, ex_indices, out_items, out_scores)


@numba.njit(cache=True, nogil=True)
def _top_k_serial(
    scores, rows, dest, ex_indptr, ex_indices, out_items, out_scores
):  # pragma: no cover - compiled
    for b in range(rows.size):
        _job(b, scores, rows, dest, ex_indptr, ex_indices, out_items, out_scores)


@numba.njit(cache=True, nogil=True)
def _select_biased(row, item_bias, row_bias, ex, best_s, best_i):  # pragma: no cover - compiled
    """``_select`` of the scores ``(row[j] + item_bias[j]) + row_bias``, each computed in the
    dtype of ``row`` (float32: the same numbers as adding the biases to the block first)."""
    k = best_s.size
    thr = -np.inf
    p = 0
    for j in range(row.size):
        s = np.float64((row[j] + item_bias[j]) + row_bias)
        if s > thr:  # not below the k-th best, -inf or NaN
            p = _offer(s, j, ex, p, best_s, best_i)
            thr = best_s[k - 1]


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_k_biased_parallel(
    scores, item_bias, row_bias, dest, ex_indptr, ex_indices, out_items, out_scores
):  # pragma: no cover - compiled
    for b in numba.prange(dest.size):
        d = dest[b]
        _select_biased(
            scores[b],
            item_bias,
            row_bias[b],
            ex_indices[ex_indptr[d] : ex_indptr[d + 1]],
            out_scores[d],
            out_items[d],
        )


_PARALLEL_FROM = 16
"""Fewer jobs run in the calling thread (one request's list: no thread pool woken)."""


def no_exclusions(n_rows: int) -> sp.csr_matrix:
    """An exclusion matrix with nothing excluded."""
    return sp.csr_matrix(
        (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n_rows + 1, np.int32)),
        shape=(n_rows, 1),
    )


def top_k_jobs(
    scores: np.ndarray,
    rows: np.ndarray,
    dest: np.ndarray,
    exclude: sp.csr_matrix,
    out_items: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Fill ``out_items[dest[b]]``/``out_scores[dest[b]]`` with the top-``k`` (``k`` = their
    width) of ``scores[rows[b]]`` minus the items of ``exclude[dest[b]]``, best first."""
    if out_items.shape[1] == 0 or len(rows) == 0:
        return
    if not exclude.has_sorted_indices:
        exclude = exclude.sorted_indices()
    rows = np.asarray(rows, np.int64)
    kernel = _top_k_parallel if rows.size >= _PARALLEL_FROM else _top_k_serial
    # the rows of the output are filled from -1/-inf: _select only writes what it finds
    out_items[dest] = -1
    out_scores[dest] = -np.inf
    kernel(
        np.asarray(scores),
        rows,
        np.asarray(dest, np.int64),
        exclude.indptr.astype(np.int64, copy=False),
        exclude.indices.astype(np.int64, copy=False),
        out_items,
        out_scores,
    )


def top_k(
    scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best columns of a 2-D ``scores`` (fewer finite: ``-1``/``-inf``)."""
    scores = np.ascontiguousarray(scores)
    n = scores.shape[0]
    out_items = np.full((n, k), -1, np.int64)
    out_scores = np.full((n, k), -np.inf, np.float64)
    idx = np.arange(n, dtype=np.int64)
    top_k_jobs(
        scores, idx, idx, no_exclusions(n) if exclude is None else exclude, out_items, out_scores
    )
    return out_items, out_scores


def top_k_biased_jobs(
    scores: np.ndarray,
    item_bias: np.ndarray,
    row_bias: np.ndarray,
    dest: np.ndarray,
    exclude: sp.csr_matrix,
    out_items: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """``top_k_jobs`` of the scores ``scores[b] + item_bias + row_bias[b]`` (row ``b`` into
    output row ``dest[b]``), the biases added inside the selection: a factor model's block of
    dot products is read once, never rewritten by a pass per bias."""
    if out_items.shape[1] == 0 or len(dest) == 0:
        return
    if not exclude.has_sorted_indices:
        exclude = exclude.sorted_indices()
    dtype = scores.dtype
    out_items[dest] = -1
    out_scores[dest] = -np.inf
    _top_k_biased_parallel(
        scores,
        np.ascontiguousarray(item_bias, dtype=dtype),
        np.ascontiguousarray(row_bias, dtype=dtype),
        np.asarray(dest, np.int64),
        exclude.indptr.astype(np.int64, copy=False),
        exclude.indices.astype(np.int64, copy=False),
        out_items,
        out_scores,
    )
