"""Diagnostic plots are written as non-empty PNG files."""

import numpy as np

from recsys_core.evaluation import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_learning_curve(tmp_path):
    history = [
        {"epoch": e, "train_loss": 1.0 / (e + 1), "val_rmse": 1.0 - 0.01 * e} for e in range(5)
    ]
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


def _coloured_pixels(path, rgb) -> int:
    import matplotlib.image

    img = matplotlib.image.imread(path)[..., :3]
    return int((np.abs(img - np.array(rgb) / 255).max(axis=-1) < 0.1).sum())


def test_a_one_epoch_curve_shows_its_points(tmp_path):
    path = plots.learning_curve(
        [{"epoch": 1, "train_loss": 0.5, "val_rmse": 0.9}], tmp_path / "one.png"
    )
    # matplotlib's first two colours: the loss (blue) and the RMSE (orange). The legend alone
    # draws ~60 pixels of each (a bare 1-point line); the points themselves add ~200 more.
    assert _coloured_pixels(path, (31, 119, 180)) > 150
    assert _coloured_pixels(path, (255, 127, 14)) > 150


GREEN = (44, 160, 44)


def test_the_validation_ndcg_of_early_stopping_is_drawn(tmp_path):
    # mult-vae: a loss, and the NDCG it keeps the best epoch of (right axis)
    vae = [
        {"epoch": e, "train_loss": 900.0 - 50 * e, "beta": 0.01 * e, "val_ndcg_at_10": v}
        for e, v in enumerate([0.10, 0.20, 0.26, 0.25, 0.24], start=1)
    ]
    with_ndcg = plots.learning_curve(vae, tmp_path / "vae.png")
    without = plots.learning_curve(
        [{k: v for k, v in h.items() if k != "val_ndcg_at_10"} for h in vae], tmp_path / "loss.png"
    )
    assert _coloured_pixels(with_ndcg, GREEN) > 300
    assert _coloured_pixels(without, GREEN) == 0
    # rerank: NDCG only, on the one axis
    ranker = [{"epoch": e, "val_ndcg_at_10": 0.3 + 0.01 * e} for e in range(1, 30)]
    assert _coloured_pixels(plots.learning_curve(ranker, tmp_path / "r.png"), GREEN) > 300
