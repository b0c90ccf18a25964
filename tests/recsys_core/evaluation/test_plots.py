"""Diagnostic plots are written as non-empty PNG files."""

import numpy as np

from recsys_core.evaluation import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_learning_curve(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_rmse": 1.0 - 0.01 * e}
               for e in range(5)]  # fmt: skip
    path = plots.learning_curve(history, tmp_path / "curve.png")
    assert path == tmp_path / "curve.png"
    assert path.stat().st_size > 1000
    assert path.read_bytes().startswith(PNG)


def test_learning_curve_with_loss_only(tmp_path):
    path = plots.learning_curve([{"epoch": 1, "train_loss": 0.5}], tmp_path / "c.png")
    assert path.read_bytes().startswith(PNG)


def test_learning_curve_without_history():
    assert plots.learning_curve([], "unused.png") is None


def test_rating_distribution(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 200).astype(float)
    pred = np.clip(truth + rng.normal(0, 0.8, 200), 1, 5)
    path = plots.rating_distribution(pred, truth, tmp_path / "dist.png")
    assert path.stat().st_size > 1000
    assert path.read_bytes().startswith(PNG)
