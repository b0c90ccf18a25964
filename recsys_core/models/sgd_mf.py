"""Biased matrix factorization by stochastic gradient descent (``sgd-mf``).

Koren, Bell & Volinsky, "Matrix factorization techniques for recommender systems", IEEE
Computer 42(8), 2009; the "SVD" of Funk (2006) and of Surprise.

Model: ``r_ui ~ mu + b_u + b_i + p_u . q_i``, minimizing the squared error plus
``reg * (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2)`` by SGD over the ratings:

    e   = r_ui - r^_ui
    b_u += lr (e - reg b_u)        b_i += lr (e - reg b_i)
    p_u += lr (e q_i - reg p_u)    q_i += lr (e p_u - reg q_i)   (both from the old values)

The defaults are Surprise SVD's (factors=100, epochs=20, lr=0.005, reg=0.02, init_std=0.1).

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
distributed stochastic gradient descent", KDD 2011). The loop is compiled with numba.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numba
import numpy as np
from pydantic import Field

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models.base import EpochCallback, ModelConfig, Recommender
from recsys_core.models.registry import register

log = logging.getLogger(__name__)

_BLOCKS = 8  # strata per side; fixed so that results do not depend on the thread count
# below this many ratings an epoch runs on one thread (identical result, less overhead);
# numba.set_num_threads(1) forces the serial path everywhere
_PARALLEL_MIN_RATINGS = 300_000


class BiasedFactors:
    """Prediction and scoring of the biased MF model ``mu + b_u + b_i + p_u . q_i``.

    Shared by the models that learn it differently (``sgd-mf``, ``als``); they set ``mu_``,
    ``user_bias_``, ``item_bias_``, ``user_factors_`` and ``item_factors_``.
    """

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return _predict(
            float(self.mu_), self.user_bias_, self.item_bias_, self.user_factors_,
            self.item_factors_, u, i,
        )  # fmt: skip

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        # the user's own bias and mu do not change the order; kept so scores are ratings
        return (
            float(self.mu_)
            + self.user_bias_[u][:, None]
            + self.item_bias_[None, :]
            + self.user_factors_[u] @ self.item_factors_.T
        )


class SGDMFConfig(ModelConfig):
    """Hyperparameters of biased MF by SGD (Surprise SVD's names and defaults)."""

    factors: int = Field(100, ge=1, le=4096, description="number of latent factors")
    epochs: int = Field(20, ge=1, le=10_000, description="passes over the training ratings")
    lr: float = Field(0.005, gt=0, le=1.0, description="learning rate")
    reg: float = Field(0.02, ge=0, description="L2 regularization of biases and factors")
    init_std: float = Field(0.1, ge=0, description="std of the normal factor initialization")
    biased: bool = Field(True, description="learn the global mean and user/item biases")
    seed: int = Field(42, description="random seed (initialization and rating order)")
    batch_size: int = Field(
        1, ge=1, le=1_000_000, description="ratings per update (1: plain SGD; >1: mini-batch)"
    )
    lr_schedule: Literal["constant", "inverse", "exponential"] = Field(
        "constant", description="learning rate per epoch: constant, inverse or exponential decay"
    )
    lr_decay: float = Field(0.0, ge=0, le=10.0, description="decay rate of the lr schedule")


@register("sgd-mf")
class SGDMF(BiasedFactors, Recommender):
    """Biased matrix factorization trained by stochastic gradient descent (numba, parallel)."""

    Config = SGDMFConfig

    def _fit(
        self,
        data: Interactions,
        *,
        eval_data: Interactions | None = None,
        callback: EpochCallback | None = None,
    ) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        n_u, n_i = data.n_users, data.n_items
        P = rng.normal(0.0, cfg.init_std, (n_u, cfg.factors))
        Q = rng.normal(0.0, cfg.init_std, (n_i, cfg.factors))
        bu = np.zeros(n_u)
        bi = np.zeros(n_i)
        mu = float(data.rating.mean()) if cfg.biased else 0.0

        u, i, r, offsets = _stratify(data, rng)
        has_eval = eval_data is not None and eval_data.known.any()
        if has_eval:
            m = eval_data.known
            eu, ei, er = eval_data.user_idx[m], eval_data.item_idx[m], eval_data.rating[m]
        # small data sets: the per-sub-epoch thread start-ups cost more than they save
        parallel = numba.get_num_threads() > 1 and r.size >= _PARALLEL_MIN_RATINGS
        epoch_fn = _epoch if parallel else _epoch_serial
        for epoch in range(1, cfg.epochs + 1):
            lr = scheduled_lr(cfg.lr, cfg.lr_schedule, cfg.lr_decay, epoch - 1)
            if cfg.batch_size == 1:
                sse = epoch_fn(u, i, r, offsets, mu, bu, bi, P, Q, lr, cfg.reg, cfg.biased)
            else:
                sse = _epoch_batched(u, i, r, offsets, mu, bu, bi, P, Q, lr, cfg.reg,
                                     cfg.biased, cfg.batch_size)
            if not math.isfinite(sse) or not np.isfinite(P).all():
                raise TrainingError(
                    f"sgd-mf diverged at epoch {epoch} (non-finite loss or factors); the "
                    f"learning rate lr={cfg.lr} is likely too high for this data: try 0.005"
                )
            metrics = {"train_loss": sse / max(1, r.size)}
            if has_eval:
                pred = np.clip(_predict(mu, bu, bi, P, Q, eu, ei), *self.rating_scale_)
                metrics["val_rmse"] = float(np.sqrt(np.mean((pred - er) ** 2)))
            self._record(epoch, metrics, callback)
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


def _stratify(data: Interactions, rng: np.random.Generator):
    """Order ratings by (sub-epoch, block) after a seeded shuffle; return block offsets."""
    m = data.known
    u = data.user_idx[m].astype(np.int32)
    i = data.item_idx[m].astype(np.int32)
    r = data.rating[m].astype(np.float64)
    perm = rng.permutation(u.size)
    u, i, r = u[perm], i[perm], r[perm]
    ug = rng.permutation(data.n_users) % _BLOCKS
    ig = rng.permutation(data.n_items) % _BLOCKS
    gu, gi = ug[u], ig[i]
    sub = (gi - gu) % _BLOCKS  # sub-epoch of each rating; its block inside it is gu
    key = sub * _BLOCKS + gu
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=_BLOCKS * _BLOCKS)
    offsets = np.zeros(_BLOCKS * _BLOCKS + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return u[order], i[order], r[order], offsets


@numba.njit(fastmath=True, cache=True)
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


@numba.njit(parallel=True, fastmath=True, cache=True)
def _epoch(u, i, r, offsets, mu, bu, bi, P, Q, lr, reg, biased):
    """One stratified epoch; the blocks of a sub-epoch run in parallel."""
    B = int(np.sqrt(offsets.size - 1) + 0.5)
    partial = np.zeros(B)
    for s in range(B):
        for g in numba.prange(B):
            blk = s * B + g
            partial[g] += _sgd_block(u, i, r, offsets[blk], offsets[blk + 1], mu, bu, bi, P, Q,
                                     lr, reg, biased)
    return partial.sum()


@numba.njit(fastmath=True, cache=True)
def _epoch_serial(u, i, r, offsets, mu, bu, bi, P, Q, lr, reg, biased):
    """The same epoch on one thread: the same blocks in the same order, so the same model."""
    B = int(np.sqrt(offsets.size - 1) + 0.5)
    partial = np.zeros(B)
    for s in range(B):
        for g in range(B):
            blk = s * B + g
            partial[g] += _sgd_block(u, i, r, offsets[blk], offsets[blk + 1], mu, bu, bi, P, Q,
                                     lr, reg, biased)
    return partial.sum()


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


@numba.njit(parallel=True, fastmath=True, cache=True)
def _predict_known(mu, bu, bi, P, Q, u, i, out):
    k = P.shape[1]
    for n in numba.prange(u.size):
        uu = u[n]
        ii = i[n]
        val = mu
        if uu >= 0:
            val += bu[uu]
        if ii >= 0:
            val += bi[ii]
        if uu >= 0 and ii >= 0:
            dot = 0.0
            for f in range(k):
                dot += P[uu, f] * Q[ii, f]
            val += dot
        out[n] = val


def _predict(mu, bu, bi, P, Q, u, i) -> np.ndarray:
    out = np.empty(len(u), dtype=np.float64)
    _predict_known(float(mu), bu, bi, P, Q, np.asarray(u, np.int64), np.asarray(i, np.int64), out)
    return out
