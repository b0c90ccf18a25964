"""The PyTorch side of ``mult-vae``: the network and its training loop.

Imported only when a model trains or is rebuilt as a module (``recsys_core.models.mult_vae``
checks first that the ``neural`` extra is installed), so nothing else pays PyTorch's import.

A batch of users goes in as dense rows: the decoder's output (one logit per item for each user
of the batch) is dense anyway, and PyTorch's dense product on the CPU was 3 times faster than
its sparse ones (``torch.sparse.mm``, ``embedding_bag``) for the first layer of a 500-user batch
of MovieLens-100K. Dropout draws one mask entry per interaction (a row's only non-zeros), and
the multinomial log-likelihood reads the log-softmax at the user's items only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_core.settings import get_settings

if TYPE_CHECKING:
    from recsys_core.models.mult_vae import MultVAEConfig
    from recsys_core.models.training import Training

log = logging.getLogger(__name__)

_EVAL_BLOCK = 1024
"""Validation users scored at a time."""


class MultVAENet(nn.Module):
    """Encoder ``[items, *hidden, 2 * latent]`` and decoder ``[latent, *hidden[::-1], items]``,
    ``tanh`` between layers (Liang et al. 2018)."""

    def __init__(self, n_items: int, hidden: tuple[int, ...], latent: int) -> None:
        super().__init__()
        q = [n_items, *hidden, 2 * latent]
        p = [latent, *reversed(hidden), n_items]
        self.latent = latent
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(q[:-1], q[1:], strict=True))
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(p[:-1], p[1:], strict=True))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x) for rows ``x`` already L2-normalized."""
        h = x
        for n, layer in enumerate(self.encoder):
            h = layer(torch.tanh(h) if n else h)
        return h[:, : self.latent], h[:, self.latent :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """One logit per item for each latent row."""
        for n, layer in enumerate(self.decoder):
            z = layer(z)
            if n < len(self.decoder) - 1:
                z = torch.tanh(z)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the latent mean (how users are scored)."""
        mu, _ = self.encode(x)
        return self.decode(mu)


def network(n_items: int, hidden: tuple[int, ...], latent: int) -> MultVAENet:
    return MultVAENet(n_items, hidden, latent)


@dataclass(frozen=True)
class Result:
    weights: dict[str, np.ndarray]
    """The kept ``state_dict`` as float32 arrays (CPU)."""
    device: str
    best_epoch: int
    epochs_run: int
    val_ndcg: float | None


def pick_device(wanted: str) -> torch.device:
    """``auto``: CUDA when PyTorch sees a GPU, else the CPU."""
    if wanted == "cuda" and not torch.cuda.is_available():
        from recsys_core.exceptions import ConfigError

        raise ConfigError(
            "mult-vae: device='cuda' but PyTorch sees no CUDA GPU (its CPU build, or no "
            "driver); use device='auto' or 'cpu', or install a CUDA build of PyTorch"
        )
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


def holdout(
    X: sp.csr_matrix, share_users: float, share_items: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix]:
    """Split ``X`` for early stopping: the training rows, the validation users, and their
    held-out items (one row per validation user). Users with fewer than 2 items are never
    validation users; each keeps at least one item."""
    counts = np.diff(X.indptr)
    eligible = np.flatnonzero(counts >= 2)
    n_val = min(eligible.size, int(round(share_users * X.shape[0])))
    if n_val == 0:
        return X, np.empty(0, np.int64), X[:0]
    users = np.sort(rng.choice(eligible, size=n_val, replace=False))
    drop = np.zeros(X.nnz, dtype=bool)
    for u in users:
        lo, hi = X.indptr[u], X.indptr[u + 1]
        n_out = min(hi - lo - 1, max(1, int(round(share_items * (hi - lo)))))
        drop[lo + rng.choice(hi - lo, size=n_out, replace=False)] = True
    rows = np.repeat(np.arange(X.shape[0]), counts)
    train = sp.csr_matrix(
        (X.data[~drop], (rows[~drop], X.indices[~drop])), shape=X.shape, dtype=np.float32
    )
    held = sp.csr_matrix(
        (X.data[drop], (rows[drop], X.indices[drop])), shape=X.shape, dtype=np.float32
    )[users]
    train.sort_indices()
    return train, users, held


@dataclass(frozen=True)
class Batch:
    """Rows of the binary ``X``: the positions of their items and the L2-normalized values."""

    row: torch.Tensor
    col: torch.Tensor
    value: torch.Tensor
    shape: tuple[int, int]

    def dense(self, value: torch.Tensor | None = None) -> torch.Tensor:
        out = torch.zeros(self.shape, device=self.value.device)
        out[self.row, self.col] = self.value if value is None else value
        return out


def _batch(X: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> Batch:
    block = X[rows]
    counts = np.diff(block.indptr)
    r = np.repeat(np.arange(rows.size), counts)
    values = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts).astype(np.float32)
    return Batch(
        torch.from_numpy(r.astype(np.int64)).to(device),
        torch.from_numpy(block.indices.astype(np.int64)).to(device),
        torch.from_numpy(values).to(device),
        (int(rows.size), int(X.shape[1])),
    )


def _ndcg(
    net: MultVAENet,
    X: sp.csr_matrix,
    users: np.ndarray,
    held: sp.csr_matrix,
    k: int,
    device: torch.device,
) -> float:
    """Mean NDCG@k of the held-out items, each user scored from their training row with those
    items excluded."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])
    total = 0.0
    with torch.no_grad():
        for start in range(0, users.size, _EVAL_BLOCK):
            rows = users[start : start + _EVAL_BLOCK]
            batch = _batch(X, rows, device)
            logits = net(batch.dense())
            logits[batch.row, batch.col] = -torch.inf
            top = torch.topk(logits, min(k, logits.shape[1]), dim=1).indices.cpu().numpy()
            truth = held[start : start + rows.size]
            hits = np.zeros(top.shape, dtype=bool)
            for n in range(rows.size):
                relevant = truth.indices[truth.indptr[n] : truth.indptr[n + 1]]
                hits[n] = np.isin(top[n], relevant)
            n_rel = np.minimum(np.diff(truth.indptr), k)
            dcg = (hits * discounts[: top.shape[1]]).sum(axis=1)
            total += float((dcg / ideal[n_rel]).sum())
    return total / users.size


def _init(net: MultVAENet, rng: np.random.Generator) -> None:
    """Glorot-normal weights and N(0, 0.001^2) biases (as in Liang et al.'s code), drawn from
    the fit's own generator."""
    with torch.no_grad():
        for layer in [*net.encoder, *net.decoder]:
            fan_out, fan_in = layer.weight.shape
            std = math.sqrt(2.0 / (fan_in + fan_out))
            layer.weight.copy_(torch.from_numpy(rng.normal(0, std, (fan_out, fan_in))))
            layer.bias.copy_(torch.from_numpy(rng.normal(0, 0.001, fan_out)))


def train(X: sp.csr_matrix, cfg: MultVAEConfig, training: Training) -> Result:
    """Train on the binary users x items ``X``; the weights of the best validation epoch (the
    last one without validation)."""
    threads = get_settings().training.torch_threads
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        return _train(X, cfg, training)
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def _train(X: sp.csr_matrix, cfg: MultVAEConfig, training: Training) -> Result:
    rng = np.random.default_rng(cfg.seed)
    device = pick_device(cfg.device)
    where = describe_device(device)
    train_X, val_users, held = holdout(X, cfg.val_users, cfg.val_holdout, rng)
    active = np.flatnonzero(np.diff(train_X.indptr) > 0)
    net = MultVAENet(X.shape[1], cfg.hidden_dims, cfg.latent_dim)
    _init(net, rng)
    net.to(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.integers(2**62)))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    keep = 1.0 - cfg.dropout
    step = 0
    best: tuple[float, int, dict[str, np.ndarray]] | None = None
    epoch = 0
    log.info(
        "mult-vae: %d users (%d validating), %d items, on %s",
        active.size,
        val_users.size,
        X.shape[1],
        where,
    )
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = rng.permutation(active)
        total, beta = 0.0, 0.0
        for start in range(0, order.size, cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            x = _batch(train_X, rows, device)
            if cfg.dropout > 0:
                mask = torch.rand(x.value.shape, generator=gen, device=device) < keep
                x_in = x.dense(x.value * mask / keep)
            else:
                x_in = x.dense()
            mu, logvar = net.encode(x_in)
            std = torch.exp(0.5 * logvar)
            z = mu + std * torch.randn(std.shape, generator=gen, device=device)
            logp = torch.log_softmax(net.decode(z), dim=1)
            # sum_i x_i log pi_i over the user's items (x binary)
            nll = -logp[x.row, x.col].sum() / rows.size
            kl = 0.5 * torch.sum(torch.exp(logvar) + mu**2 - 1.0 - logvar, dim=1).mean()
            beta = min(cfg.anneal_cap, step / cfg.total_anneal_steps)
            loss = nll + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total += float(loss.detach()) * rows.size
        if not math.isfinite(total):
            from recsys_core.exceptions import TrainingError

            raise TrainingError(
                f"mult-vae: the loss became {total!r} at epoch {epoch} (lr={cfg.lr!r}); "
                "lower lr or weight_decay"
            )
        extra = {"beta": float(beta)}
        if val_users.size:
            net.eval()
            score = _ndcg(net, train_X, val_users, held, cfg.val_k, device)
            extra[f"val_ndcg_at_{cfg.val_k}"] = score
            if best is None or score > best[0]:
                best = (score, epoch, _state(net))
        training.epoch(epoch, total / max(active.size, 1), extra=extra)
        if best is not None and epoch - best[1] >= cfg.patience:
            log.info("mult-vae: no better validation NDCG since epoch %d: stopped", best[1])
            break
    if best is None:
        return Result(_state(net), where, epoch, epoch, None)
    return Result(best[2], where, best[1], epoch, best[0])


def _state(net: MultVAENet) -> dict[str, np.ndarray]:
    return {
        key: value.detach().to("cpu", torch.float32).numpy().copy()
        for key, value in net.state_dict().items()
    }
