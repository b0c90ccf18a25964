"""Biased matrix factorization by stochastic gradient descent (``sgd-mf``).

Koren, Bell & Volinsky, "Matrix factorization techniques for recommender systems", IEEE
Computer 42(8), 2009; the "SVD" of Funk (2006) and of Surprise.

Model: ``r_ui ~ mu + b_u + b_i + p_u . q_i``, minimizing the squared error plus
``reg * (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2)`` by SGD over the ratings:

    e   = r_ui - r^_ui
    b_u += lr (e - reg b_u)        b_i += lr (e - reg b_i)
    p_u += lr (e q_i - reg p_u)    q_i += lr (e p_u - reg q_i)   (both from the old values)

The names are Surprise SVD's; its defaults (factors=100, epochs=20, lr=0.005, reg=0.02) lose to
the bias baseline on MovieLens-shaped data, on warm users under a time split too (the
``synthetic:ml100k`` profile: RMSE 0.9863 against 0.9771). Retuned there: epochs=30, lr=0.007,
reg=0.08 (factors=100, init_std=0.1 kept) score 0.9561 on those warm users, 0.021 below the bias
baseline (0.0137 below on a second seed; benchmarks/warm_defaults.py measures it).

Learning-rate schedules (``lr_schedule``; epoch ``t`` from 0): ``constant`` (the default),
``inverse`` ``lr / (1 + lr_decay t)`` and ``exponential`` ``lr exp(-lr_decay t)``.

Mini-batches (``batch_size > 1``): the ratings of each block are taken ``batch_size`` at a time;
the errors of a batch are computed with the parameters as they were at its start, then its
updates are applied (summed, so ``lr`` keeps its per-rating meaning). ``batch_size=1`` is plain
SGD.

Parallelism without races (and so deterministic for a seed whatever the thread count): the
ratings are cut into ``B x B`` blocks by random user and item groups, and each epoch runs ``B``
sub-epochs; in sub-epoch ``s`` the ``B`` blocks ``(g, (g + s) mod B)`` touch disjoint users and
items, so they are processed in parallel (Gemulla et al., "Large-scale matrix factorization with
distributed stochastic gradient descent", KDD 2011). The loop over a block's ratings is
compiled with numba (``fastmath``: its sums may be reassociated, so a kernel compiled twice
could round differently); the blocks of a sub-epoch are handed to threads that all call that
one compiled function, so the serial and the parallel runs give the same factors, bit for bit
(not merely equal to rounding). Below 300,000 ratings (``RECSYS_SGD_PARALLEL_MIN_RATINGS``, read
at fit time) the same blocks run in the same order on one thread: thread hand-offs would cost
more than they save. Mini-batch epochs (``batch_size > 1``) run in one parallel kernel.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Literal

import numba
import numpy as np
from pydantic import Field

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig
from recsys_core.models.biased_factors import BiasedFactors, predict_biased_factors
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.settings import get_settings

log = logging.getLogger(__name__)

_BLOCKS = 8  # strata per side; fixed so that results do not depend on the thread count
# below this many ratings an epoch runs on one thread (identical result, less overhead);
# numba.set_num_threads(1) forces the serial path everywhere. A runtime setting, not a
# hyperparameter: the environment variable is read at fit time.
PARALLEL_MIN_RATINGS_ENV = "RECSYS_SGD_PARALLEL_MIN_RATINGS"
_PARALLEL_MIN_RATINGS = 300_000


def parallel_min_ratings() -> int:
    """Ratings from which an epoch runs its blocks in parallel (``RECSYS_SGD_PARALLEL_MIN_RATINGS``,
    default 300,000)."""
    return get_settings().training.sgd_parallel_min_ratings


class SGDMFConfig(ModelConfig):
    """Hyperparameters of biased MF by SGD (Surprise SVD's names; defaults retuned)."""

    factors: int = hp.factors(100)
    epochs: int = hp.epochs(30)
    lr: float = hp.learning_rate(0.007)
    reg: float = hp.sgd_reg(0.08)
    init_std: float = hp.init_std()
    biased: bool = hp.biased()
    seed: int = hp.seed("(initialization and rating order)")
    batch_size: int = Field(
        1, ge=1, le=1_000_000, description="ratings per update (1: plain SGD; >1: mini-batch)"
    )
    lr_schedule: Literal["constant", "inverse", "exponential"] = Field(
        "constant", description="learning rate per epoch: constant, inverse or exponential decay"
    )
    lr_decay: float = Field(0.0, ge=0, le=10.0, description="decay rate of the lr schedule")


@register("sgd-mf")
class SGDMF(BiasedFactors[SGDMFConfig]):
    """Biased matrix factorization trained by stochastic gradient descent (numba, parallel)."""

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        n_u, n_i = data.n_users, data.n_items
        P = rng.normal(0.0, cfg.init_std, (n_u, cfg.factors))
        Q = rng.normal(0.0, cfg.init_std, (n_i, cfg.factors))
        bu = np.zeros(n_u)
        bi = np.zeros(n_i)
        mu = float(data.rating.mean()) if cfg.biased else 0.0

        u, i, r, offsets = _stratify(data, rng)
        # small data sets: the per-sub-epoch thread start-ups cost more than they save
        threads = numba.get_num_threads()
        parallel = threads > 1 and r.size >= parallel_min_ratings()
        epochs = _Epochs(offsets, threads if parallel else 1)
        log.debug(
            "sgd-mf: %d ratings, %s epochs on %d thread(s)",
            r.size,
            "parallel" if parallel else "serial",
            epochs.threads,
        )
        predict = partial(predict_biased_factors, mu, bu, bi, P, Q)  # the arrays learn in place
        try:
            for epoch in range(1, cfg.epochs + 1):
                lr = scheduled_lr(cfg.lr, cfg.lr_schedule, cfg.lr_decay, epoch - 1)
                if cfg.batch_size == 1:
                    sse = epochs.run(u, i, r, mu, bu, bi, P, Q, lr, cfg.reg, cfg.biased)
                else:
                    sse = _epoch_batched(
                        u, i, r, offsets, mu, bu, bi, P, Q, lr, cfg.reg, cfg.biased, cfg.batch_size
                    )
                if not math.isfinite(sse) or not np.isfinite(P).all():
                    raise TrainingError(
                        f"sgd-mf diverged at epoch {epoch} (non-finite loss or factors); the "
                        f"learning rate lr={cfg.lr} is likely too high for this data: try "
                        "0.005"
                    )
                training.epoch(epoch, sse / max(1, r.size), predict)
        finally:
            epochs.close()
        self.mu_ = np.float64(mu)
        self.user_bias_ = bu
        self.item_bias_ = bi
        self.user_factors_ = P
        self.item_factors_ = Q


def scheduled_lr(lr: float, schedule: str, decay: float, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (from 0) under ``schedule``."""
    if schedule == "inverse":
        return lr / (1.0 + decay * epoch)
    if schedule == "exponential":
        return lr * math.exp(-decay * epoch)
    return lr


def _stratify(
    data: Interactions, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Order ratings by (sub-epoch, block) after a seeded shuffle; return block offsets.

    Memory: the three ordered arrays (int32, int32 and the ratings' own float dtype) and one
    int32 permutation, nothing per rating wider than that: at 25M ratings an int64 or float64
    copy costs 200 MB each. The order is that of a stable sort of the shuffled ratings by block,
    done as one counting-sort pass.
    """
    m = data.known
    u, i, r = data.user_idx, data.item_idx, data.rating
    if not m.all():
        u, i, r = u[m], i[m], r[m]
    del m
    u = u.astype(np.int32, copy=False)
    i = i.astype(np.int32, copy=False)
    if r.dtype != np.float32:  # float32 -> float64 inside the kernel is exact: no copy needed
        r = r.astype(np.float64)
    # the permutation Generator.permutation(n) draws, built as int32 (half the memory)
    perm = np.arange(u.size, dtype=np.int32)
    rng.shuffle(perm)
    ug = (rng.permutation(data.n_users) % _BLOCKS).astype(np.int8)
    ig = (rng.permutation(data.n_items) % _BLOCKS).astype(np.int8)
    offsets = np.zeros(_BLOCKS * _BLOCKS + 1, dtype=np.int64)
    out_u = np.empty_like(u)
    out_i = np.empty_like(i)
    out_r = np.empty_like(r)
    # the kernel's scratch arrays come from here: a kernel that allocates loads numba's array
    # implementation (numba.np.arrayobj and what it imports) with its cached code
    scratch = np.zeros((2, _BLOCKS * _BLOCKS), dtype=np.int64)
    _counting_sort(perm, u, i, r, ug, ig, offsets, out_u, out_i, out_r, scratch)
    return out_u, out_i, out_r, offsets


@numba.njit(cache=True, nogil=True)
def _counting_sort(perm, u, i, r, ug, ig, offsets, out_u, out_i, out_r, scratch):
    """Scatter ratings ``perm[0], perm[1], ...`` to their block, keeping that order inside a
    block (a stable sort by block key); fills ``offsets`` (block starts, then the total).
    ``scratch``: two rows of ``B * B`` zeros (the counts, then the write positions)."""
    B = np.int64(_BLOCKS)
    counts = scratch[0]
    for n in range(u.size):
        gu = np.int64(ug[u[n]])
        counts[((np.int64(ig[i[n]]) - gu) % B) * B + gu] += 1
    for b in range(B * B):
        offsets[b + 1] = offsets[b] + counts[b]
    pos = scratch[1]
    for b in range(B * B):
        pos[b] = offsets[b]
    for n in range(perm.size):
        src = perm[n]
        gu = np.int64(ug[u[src]])
        key = ((np.int64(ig[i[src]]) - gu) % B) * B + gu  # sub-epoch, then block in it
        dst = pos[key]
        out_u[dst] = u[src]
        out_i[dst] = i[src]
        out_r[dst] = r[src]
        pos[key] = dst + 1


@numba.njit(fastmath=True, cache=True, nogil=True)
def _sgd_block(u, i, r, start, stop, mu, bu, bi, P, Q, lr, reg, biased):
    """Plain SGD over ratings ``start:stop``; returns their squared error before the updates."""
    k = P.shape[1]
    acc = 0.0
    for n in range(start, stop):
        uu = u[n]
        ii = i[n]
        dot = 0.0
        for f in range(k):
            dot += P[uu, f] * Q[ii, f]
        err = r[n] - (mu + bu[uu] + bi[ii] + dot)
        acc += err * err
        if biased:
            bu[uu] += lr * (err - reg * bu[uu])
            bi[ii] += lr * (err - reg * bi[ii])
        for f in range(k):
            puf = P[uu, f]
            qif = Q[ii, f]
            P[uu, f] += lr * (err * qif - reg * puf)
            Q[ii, f] += lr * (err * puf - reg * qif)
    return acc


@numba.njit(fastmath=True, cache=True, nogil=True)
def _sgd_blocks(u, i, r, offsets, blocks, mu, bu, bi, P, Q, lr, reg, biased, sse):
    """Plain SGD over the blocks ``blocks``, in that order; ``sse[b]`` gets block ``b``'s
    squared error. The one compiled entry of an epoch, serial and parallel alike."""
    for n in range(blocks.size):
        b = blocks[n]
        sse[b] = _sgd_block(u, i, r, offsets[b], offsets[b + 1], mu, bu, bi, P, Q, lr, reg, biased)


class _Epochs:
    """Runs the stratified epochs: every block on the calling thread (``threads=1``), or the
    blocks of each sub-epoch split among ``threads`` Python threads (the kernel releases the
    GIL).

    Both ways call the same compiled function, :func:`_sgd_blocks`, on the same blocks in the
    same order per block, so the model is the same bits whatever the thread count: ``fastmath``
    lets LLVM reassociate the sums inside the kernel (the dot product vectorized), and a
    second kernel compiled for the parallel loop could round differently (it did, by an ulp).
    """

    def __init__(self, offsets: np.ndarray, threads: int) -> None:
        self.offsets = offsets
        B = int(np.sqrt(offsets.size - 1) + 0.5)
        self.sse = np.zeros(B * B)
        self.threads = max(1, min(threads, B))
        self.all_blocks = np.arange(B * B, dtype=np.int64)
        # sub-epoch s holds the blocks s*B .. s*B + B - 1 (disjoint users and items)
        self.parts = [
            np.array_split(np.arange(s * B, (s + 1) * B, dtype=np.int64), self.threads)
            for s in range(B)
        ]
        self.pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="sgd-mf")
            if self.threads > 1
            else None
        )

    def run(self, u, i, r, mu, bu, bi, P, Q, lr, reg, biased) -> float:
        """One epoch; returns its squared error."""
        args = (mu, bu, bi, P, Q, lr, reg, biased, self.sse)
        if self.pool is None:
            _sgd_blocks(u, i, r, self.offsets, self.all_blocks, *args)
        else:
            for part in self.parts:
                futures = [
                    self.pool.submit(_sgd_blocks, u, i, r, self.offsets, blocks, *args)
                    for blocks in part
                ]
                for f in futures:
                    f.result()
        return float(self.sse.sum())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


@numba.njit(parallel=True, fastmath=True, cache=True)
def _epoch_batched(u, i, r, offsets, mu, bu, bi, P, Q, lr, reg, biased, batch):
    """The stratified epoch with mini-batches inside each block (see the module docstring)."""
    B = int(np.sqrt(offsets.size - 1) + 0.5)
    k = P.shape[1]
    partial = np.zeros(B)
    for s in range(B):
        for g in numba.prange(B):
            blk = s * B + g
            acc = 0.0
            errs = np.empty(batch)
            for b0 in range(offsets[blk], offsets[blk + 1], batch):
                b1 = min(b0 + batch, offsets[blk + 1])
                for n in range(b0, b1):
                    uu = u[n]
                    ii = i[n]
                    dot = 0.0
                    for f in range(k):
                        dot += P[uu, f] * Q[ii, f]
                    err = r[n] - (mu + bu[uu] + bi[ii] + dot)
                    errs[n - b0] = err
                    acc += err * err
                for n in range(b0, b1):
                    uu = u[n]
                    ii = i[n]
                    err = errs[n - b0]
                    if biased:
                        bu[uu] += lr * (err - reg * bu[uu])
                        bi[ii] += lr * (err - reg * bi[ii])
                    for f in range(k):
                        puf = P[uu, f]
                        qif = Q[ii, f]
                        P[uu, f] += lr * (err * qif - reg * puf)
                        Q[ii, f] += lr * (err * puf - reg * qif)
            partial[g] += acc
    return partial.sum()
