"""Diagnostic plots logged with every run: learning curve, predicted vs true ratings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys_core.plotting import pyplot


def learning_curve(history: list[dict[str, float]], path: str | Path) -> Path | None:
    """Training loss and validation RMSE per epoch; None when the model has no epochs."""
    if not history:
        return None
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    # markers: a line needs two points, so a 1-epoch run would otherwise draw an empty frame
    style = {"marker": "o", "markersize": 4 if len(epochs) > 1 else 8}
    fig, ax = plt.subplots(figsize=(6, 4))
    if any("train_loss" in h for h in history):
        ax.plot(
            epochs,
            [h.get("train_loss", np.nan) for h in history],
            label="train loss (MSE)",
            **style,
        )
    if any("val_rmse" in h for h in history):
        ax.plot(
            epochs, [h.get("val_rmse", np.nan) for h in history], label="validation RMSE", **style
        )
    ax.set_xlabel("epoch")
    if len(epochs) == 1:
        ax.set_xticks(epochs)
    ax.set_title("Learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


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
