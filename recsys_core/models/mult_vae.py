"""Variational autoencoder with a multinomial likelihood for implicit feedback (``mult-vae``).

Liang, Krishnan, Hoffman & Jebara, "Variational Autoencoders for Collaborative Filtering",
WWW 2018. A user is the binary row ``x`` of the items they interacted with. The encoder maps the
L2-normalized row (with dropout on its entries while training) through ``tanh`` layers to the
mean and log-variance of a Gaussian latent ``z``; the decoder maps ``z`` through ``tanh`` layers
to one logit per item, and ``softmax(logits)`` is the multinomial over the items. Training
maximizes the annealed evidence lower bound of each batch of users,

    sum_i x_i log softmax(f(z))_i  -  beta * KL(q(z | x) || N(0, I)),

with ``beta`` rising linearly from 0 to ``anneal_cap`` over ``total_anneal_steps`` updates (Adam).

* Scores of a user: the decoder's logits at the encoder's mean (no sampling), so a user the
  model never saw is scored by encoding the items given at request time: fold-in without refit
  (``capabilities.fold_in = "model"``). An item is explained by the user's items whose removal
  from the row lowers its score most (:meth:`MultVAE.explain_idx`, by occlusion).
* Early stopping on NDCG@``val_k``: a share ``val_users`` of the users have a share
  ``val_holdout`` of their items held out of training; after each epoch the model scores those
  users from their remaining items, and the weights of the best epoch are kept. The held-out
  items are out of the gradient only: a user is always scored from their whole training row.
* Weights: the PyTorch module's ``state_dict`` saved as float32 arrays in ``state.npz``
  (``encoder_0_weight_``, ...; PyTorch's ``out x in`` layout, no pickle). Scoring runs in numpy
  (the first layer as a sum of the weight rows of the user's items,
  ``recsys_core.models.item_scores``), so loading and serving a fitted model need no PyTorch;
  :meth:`MultVAE.to_torch` rebuilds the module from the arrays.

Training needs the ``neural`` extra (PyTorch). It is seeded by ``seed`` through its own
generators (the weights' initialization, the order of the users, the dropout masks and the
latent noise), runs with deterministic algorithms, and uses ``RECSYS_TORCH_THREADS`` threads:
the same seed on the same device and thread count gives the same model.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import Capabilities, ModelConfig, ModelReason, Recommender
from recsys_core.models.item_scores import aligned_user_items, aligned_weights, block_scores
from recsys_core.models.item_scores import row_scores as item_row_scores
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.models.user_items import user_items

log = logging.getLogger(__name__)

MAX_HIDDEN_LAYERS = 3
"""Hidden layers a side at most (Liang et al. found one, of 600 units, best; deeper did not
help)."""

_REASONS = 3
"""Reasons given per explained item."""


class MultVAEConfig(ModelConfig):
    """Hyperparameters of Mult-VAE (Liang et al. 2018; defaults are the paper's)."""

    hidden_dims: tuple[int, ...] = Field(
        (600,),
        max_length=MAX_HIDDEN_LAYERS,
        description="units of the encoder's hidden layers (the decoder mirrors them), "
        "e.g. 600 or 600,300",
    )
    latent_dim: int = Field(200, ge=1, le=4096, description="dimension of the latent z")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout rate on the input row")
    anneal_cap: float = Field(0.2, ge=0, le=1, description="largest weight beta of the KL term")
    total_anneal_steps: int = Field(
        20_000, ge=1, description="updates over which beta rises linearly from 0 to anneal_cap"
    )
    lr: float = hp.learning_rate(1e-3, what="learning rate of Adam")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty on the weights (Adam)")
    batch_size: int = Field(500, ge=1, le=1_000_000, description="users per update")
    epochs: int = Field(100, ge=1, le=10_000, description="most passes over the users")
    patience: int = Field(
        10, ge=1, description="epochs without a better validation NDCG before training stops"
    )
    val_users: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of the users with items held out for early stopping "
        "(0: no validation, every epoch runs)",
    )
    val_holdout: float = Field(
        0.2, gt=0, lt=1, description="share of a validation user's items held out"
    )
    val_k: int = Field(10, ge=1, le=1000, description="k of the validation NDCG@k")
    seed: int = hp.seed("(weights, user order, dropout, noise)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where to train: auto (CUDA when available), cpu or cuda"
    )

    @field_validator("hidden_dims", mode="before")
    @classmethod
    def _dims_from_text(cls, value: Any) -> Any:
        # the CLI and logged parameters give text: "600", "600,300" or "[600, 300]"
        if isinstance(value, int) and not isinstance(value, bool):
            return (value,)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(int(v) for v in text.split(",") if v.strip()) if text else ()
        return value

    @field_validator("hidden_dims")
    @classmethod
    def _dims_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 or d > 100_000 for d in value):
            raise ValueError(f"every hidden layer needs 1 to 100000 units, got {list(value)}")
        return value


def _layer_docs() -> dict[str, str]:
    out: dict[str, str] = {}
    for side, n in (("encoder", MAX_HIDDEN_LAYERS + 1), ("decoder", MAX_HIDDEN_LAYERS + 1)):
        for layer in range(n):
            what = (
                f"layer {layer} of the {side} (PyTorch Linear, out x in; the last encoder "
                "layer's rows are the latent mean, then the log-variance; the last decoder "
                "layer's rows are one per item)"
            )
            out[f"{side}_{layer}_weight_"] = f"weights of {what}"
            out[f"{side}_{layer}_bias_"] = f"biases of {what}"
    return out


@register("mult-vae")
class MultVAE(Recommender[MultVAEConfig]):
    """Variational autoencoder with a multinomial likelihood (Liang et al. 2018; PyTorch)."""

    capabilities = Capabilities(predicts_ratings=False, fold_in="model")
    factor_attributes: ClassVar[dict[str, str]] = {}
    device_: str
    """where the model was trained (cpu, or cuda and the GPU's name)"""
    best_epoch_: int
    """the epoch whose weights were kept (the best validation NDCG)"""
    epochs_run_: int
    """epochs trained before early stopping (or all of them)"""
    val_ndcg_: float | None
    """validation NDCG@val_k of the kept weights (None without validation)"""
    fit_seconds_: float
    """seconds the training loop took"""

    @classmethod
    def state_docs(cls) -> dict[str, str]:
        """The documented attributes, and the network's layers (``encoder_0_weight_``, ...)."""
        return {**_layer_docs(), **super().state_docs()}

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: Interactions, training: Training) -> None:
        from recsys_core.extras import require

        require("torch", "neural")  # a missing extra: what to install
        from recsys_core.models import mult_vae_torch

        cfg = self.config
        X = user_items(data)  # binary users x items, float32, sorted indices
        started = time.perf_counter()
        result = mult_vae_torch.train(X, cfg, training)
        self.fit_seconds_ = float(time.perf_counter() - started)
        for key, value in result.weights.items():
            if not np.isfinite(value).all():
                raise TrainingError(
                    f"mult-vae produced non-finite weights in {key!r} (lr={cfg.lr!r}); lower lr "
                    "(such as 1e-3) or check the interactions"
                )
            setattr(self, _attr(key), value)
        self.device_ = result.device
        self.best_epoch_ = result.best_epoch
        self.epochs_run_ = result.epochs_run
        self.val_ndcg_ = result.val_ndcg
        log.info(
            "mult-vae: %d epochs on %s in %.1f s, kept epoch %d (validation NDCG@%d %s)",
            result.epochs_run,
            result.device,
            self.fit_seconds_,
            result.best_epoch,
            cfg.val_k,
            "n/a" if result.val_ndcg is None else f"{result.val_ndcg:.4f}",
        )
        self._clear_cache()

    def _after_load(self, folder: Any) -> None:
        self._clear_cache()

    def _clear_cache(self) -> None:
        self.__dict__.pop("_layers_cache", None)
        self.__dict__.pop("_rows_cache", None)

    # ------------------------------------------------------------------ the network in numpy
    def _weights(self, side: str) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        layer = 0
        while hasattr(self, f"{side}_{layer}_weight_"):
            out.append(
                (
                    np.asarray(getattr(self, f"{side}_{layer}_weight_"), np.float32),
                    np.asarray(getattr(self, f"{side}_{layer}_bias_"), np.float32),
                )
            )
            layer += 1
        return out

    def _network(self) -> dict[str, Any]:
        """The layers as scoring reads them, derived once from the stored arrays: the first
        encoder layer as items x units rows (summed per user), the rest transposed."""
        cached = self.__dict__.get("_layers_cache")
        if cached is not None:
            return cached
        self._check_fitted()
        encoder, decoder = self._weights("encoder"), self._weights("decoder")
        latent = decoder[0][0].shape[1]
        first_w, first_b = encoder[0]
        # the last encoder layer without its log-variance half: scoring uses the mean only
        rest = [(w.T, b) for w, b in encoder[1:]]
        if rest:
            rest[-1] = (rest[-1][0][:, :latent], rest[-1][1][:latent])
        out = {
            "first": aligned_weights(first_w.T),  # items x units, C-ordered float32
            "first_bias": first_b,
            "first_is_last": len(encoder) == 1,
            "latent": latent,
            "encoder": rest,
            "decoder": [(np.ascontiguousarray(w.T), b) for w, b in decoder],
        }
        self.__dict__["_layers_cache"] = out
        return out

    def _from_first_layer(self, h: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Logits of every item (or of ``items``) from the first encoder layer's
        pre-activations ``h`` (one row per user): the rest of the encoder (the mean only),
        then the decoder."""
        net = self._network()
        if net["first_is_last"]:
            z = h[:, : net["latent"]]
        else:
            z = np.tanh(h)
            layers = net["encoder"]
            for n, (w, b) in enumerate(layers):
                z = z @ w + b
                if n < len(layers) - 1:
                    z = np.tanh(z)
        decoder = net["decoder"]
        for n, (w, b) in enumerate(decoder):
            if n == len(decoder) - 1 and items is not None:
                w, b = w[:, items], b[items]
            z = z @ w + b
            if n < len(decoder) - 1:
                z = np.tanh(z)
        return np.asarray(z, dtype=np.float32)

    def _input_rows(self) -> sp.csr_matrix:
        """The users' training rows, binary, as the first layer reads them."""
        rows = self.__dict__.get("_rows_cache")
        if rows is None or rows.shape[0] != self.seen_.shape[0]:
            X = sp.csr_matrix(self.seen_, dtype=np.float32, copy=True)
            X.data = np.ones_like(X.data)
            X.sort_indices()
            rows = self.__dict__["_rows_cache"] = aligned_user_items(X)
        return rows

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        net = self._network()
        X = self._input_rows()
        u = np.asarray(u, np.int64)
        counts = np.diff(X.indptr)[u].astype(np.float32)
        # x / |x| for a binary row: the sum of the item rows times 1/sqrt(n)
        h = block_scores(u, X, net["first"])
        h *= (1.0 / np.sqrt(np.maximum(counts, 1.0)))[:, None]
        h += net["first_bias"]
        return self._from_first_layer(h)

    def fold_in(
        self, items: np.ndarray, ratings: np.ndarray | None = None, *, user: int = -1
    ) -> np.ndarray:
        """Scores of every item for a user with ``items`` added to their training items
        (``user``: their index, ``-1`` for a user the model never saw), by encoding the row:
        no refit. ``ratings`` are ignored (the model reads interactions only)."""
        self._check_fitted()
        items = np.asarray(items, np.int64)
        X = self._input_rows()
        if user >= 0:
            own = X.indices[X.indptr[user] : X.indptr[user + 1]].astype(np.int64)
            items = np.union1d(own, items)
        items = np.unique(items)
        net = self._network()
        h = item_row_scores(items, np.ones(items.size, np.float32), net["first"])
        h *= np.float32(1.0 / np.sqrt(max(items.size, 1)))
        h += net["first_bias"]
        return self._from_first_layer(h[None, :])[0]

    def contributions(self, items: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """How much each of a user's (distinct) ``items`` adds to the scores of ``targets``:
        the score of
        each target with the whole row minus its score with that item left out (``len(items) x
        len(targets)``; an explanation by occlusion, one forward pass per item, the first
        layer of each row the full row's sum less one item's weights)."""
        self._check_fitted()
        net = self._network()
        items = np.asarray(items, np.int64)
        targets = np.asarray(targets, np.int64)
        first = net["first"]
        total = first[items].sum(axis=0, dtype=np.float32)
        rows = np.vstack([total, total[None, :] - first[items]])
        counts = np.concatenate([[items.size], np.full(items.size, items.size - 1)])
        rows *= (1.0 / np.sqrt(np.maximum(counts, 1)))[:, None].astype(np.float32)
        rows += net["first_bias"]
        scores = self._from_first_layer(rows, targets)
        return scores[0][None, :] - scores[1:]

    def explain_idx(
        self, items: np.ndarray, *, user: int = -1, recent: np.ndarray | None = None
    ) -> list[tuple[ModelReason, ...]]:
        """Why each of ``items`` is recommended to user index ``user`` (``-1``: new) with the
        item indices ``recent`` added to their row: the (at most three) user's items whose
        removal lowers its score most (:meth:`contributions`), the score lost as the weight."""
        self._check_fitted()
        own = self.seen_[user].indices if user >= 0 else np.empty(0, np.int64)
        extra = np.empty(0, np.int64) if recent is None else np.asarray(recent, np.int64)
        mine = np.union1d(np.asarray(own, np.int64), extra)
        targets = np.asarray(items, np.int64)
        if mine.size == 0:
            return [() for _ in targets]
        contrib = self.contributions(mine, targets)  # user items x targets
        titles = getattr(self, "item_titles_", None)
        out: list[tuple[ModelReason, ...]] = []
        for n in range(targets.size):
            col = contrib[:, n]
            best = [b for b in np.argsort(-col, kind="stable")[:_REASONS] if col[b] > 0]
            reasons = []
            for b in best:
                pos = int(mine[b])
                name = (titles[pos] if titles is not None else "") or (
                    f"item {self.item_vocab_.ids[pos]}"
                )
                reasons.append(ModelReason(f"you interacted with {name}", float(col[b]), pos))
            out.append(tuple(reasons))
        return out

    def to_torch(self) -> Any:
        """The fitted network as a PyTorch module (CPU, eval mode), rebuilt from the stored
        arrays; ``module(x)`` gives the logits of a batch of L2-normalized rows (dense)."""
        from recsys_core.extras import require

        torch = require("torch", "neural")
        from recsys_core.models import mult_vae_torch

        self._check_fitted()
        encoder, decoder = self._weights("encoder"), self._weights("decoder")
        hidden = tuple(w.shape[0] for w, _ in encoder[:-1])
        module = mult_vae_torch.network(self.n_items, hidden, decoder[0][0].shape[1])
        state = {}
        for side, layers in (("encoder", encoder), ("decoder", decoder)):
            for n, (w, b) in enumerate(layers):
                state[f"{side}.{n}.weight"] = torch.from_numpy(w.copy())
                state[f"{side}.{n}.bias"] = torch.from_numpy(b.copy())
        module.load_state_dict(state)
        return module.eval()


def _attr(state_key: str) -> str:
    """The attribute of a ``state_dict`` key: ``encoder.0.weight`` -> ``encoder_0_weight_``."""
    name = state_key.replace(".", "_") + "_"
    if name not in MultVAE.state_docs():
        raise ConfigError(f"mult-vae: unexpected layer {state_key!r} in the network")
    return name
