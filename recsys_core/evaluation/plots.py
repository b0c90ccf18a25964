"""Diagnostic plots logged with every run: learning curve, predicted vs true ratings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys_core.plotting import pyplot


def learning_curve(history: list[dict[str, float]], path: str | Path) -> Path | None:
    """Training loss and validation RMSE per epoch (left axis) and the validation NDCG of the
    ranking models that stop early on it (``val_ndcg_at_<k>``: mult-vae, rerank; right axis,
    green, the best epoch marked); None when the model has no epochs."""
    if not history:
        return None
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    # markers: a line needs two points, so a 1-epoch run would otherwise draw an empty frame
    style = {"marker": "o", "markersize": 4 if len(epochs) > 1 else 8}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lines = []
    if any("train_loss" in h for h in history):
        lines += ax.plot(
            epochs, [h.get("train_loss", np.nan) for h in history], label="train loss", **style
        )
    if any("val_rmse" in h for h in history):
        lines += ax.plot(
            epochs, [h.get("val_rmse", np.nan) for h in history], label="validation RMSE", **style
        )
    ranking = sorted({key for h in history for key in h if key.startswith("val_ndcg_at_")})
    # beside a loss, NDCG has its own scale: the right axis
    right = ax.twinx() if lines and ranking else ax
    for key in ranking:
        values = np.array([h.get(key, np.nan) for h in history], dtype=np.float64)
        label = f"validation NDCG@{key.removeprefix('val_ndcg_at_')}"
        lines += right.plot(epochs, values, color=_NDCG_COLOUR, label=label, **style)
        if np.isfinite(values).any():
            best = int(np.nanargmax(values))
            lines.append(
                right.axvline(
                    epochs[best],
                    color=_NDCG_COLOUR,
                    linestyle=":",
                    label=f"best {label} (epoch {epochs[best]})",
                )
            )
        right.set_ylabel("NDCG")
    ax.set_xlabel("epoch")
    left = [h for h in ("train_loss", "val_rmse") if any(h in e for e in history)]
    if left:
        ax.set_ylabel(
            {"train_loss": "loss", "val_rmse": "RMSE"}.get(left[0], "")
            if len(left) == 1
            else "loss, RMSE"
        )
    ax.xaxis.set_major_locator(_integer_ticks())
    if len(epochs) == 1:
        ax.set_xticks(epochs)
    ax.set_title("Learning curve")
    ax.grid(alpha=0.3)
    if lines:
        # below the axes: the curves of two axes leave no corner free of both
        ax.legend(
            lines,
            [line.get_label() for line in lines],
            fontsize="small",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            ncol=2,
            frameon=False,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


_NDCG_COLOUR = "#2ca02c"
"""Matplotlib's green (its third colour): the validation NDCG of a learning curve."""


def rating_distribution(pred: np.ndarray, truth: np.ndarray, path: str | Path) -> Path:
    """Histograms of predicted and true test ratings on the same bins."""
    plt = pyplot()
    lo = float(min(np.min(truth), np.min(pred)))
    hi = float(max(np.max(truth), np.max(pred)))
    bins = np.linspace(lo, hi, 41)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(truth, bins=bins, alpha=0.5, label="true", density=True)
    ax.hist(pred, bins=bins, alpha=0.5, label="predicted", density=True)
    ax.set_xlabel("rating")
    ax.set_title("Predicted vs true ratings (test split)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
