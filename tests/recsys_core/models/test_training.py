import numpy as np
import pandas as pd

from recsys_core.features.matrix import Interactions
from recsys_core.models import create
from recsys_core.models.training import Training, ValidationPairs

SCALE = np.array([1.0, 5.0])


def _eval(train: Interactions, rows: list[tuple[str, str, float]]) -> Interactions:
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"]).assign(timestamp=0)
    return Interactions.from_frame(frame, users=train.users, items=train.items)


def test_validation_pairs_keep_known_pairs_and_clip(tiny):
    user, item = tiny.train["user"].iloc[0], tiny.train["item"].iloc[0]
    ev = _eval(tiny.data, [(user, item, 4.0), ("cold", item, 1.0), (user, "cold", 1.0)])
    val = ValidationPairs.of(ev, SCALE)
    assert val is not None and val.user.size == 1  # the cold pairs are left out
    assert val.rmse(np.array([9.0])) == 1.0  # 9 is clipped to 5
    assert ValidationPairs.of(None, SCALE) is None
    assert ValidationPairs.of(_eval(tiny.data, [("cold", "cold", 3.0)]), SCALE) is None


def test_epochs_go_to_history_and_callback(tiny):
    history: list[dict[str, float]] = []
    heard = []
    user, item = tiny.train["user"].iloc[0], tiny.train["item"].iloc[0]
    training = Training(
        history,
        eval_data=_eval(tiny.data, [(user, item, 4.0)]),
        rating_scale=SCALE,
        callback=lambda n, m: heard.append((n, m)),
    )
    training.epoch(1, 0.5, lambda u, i: np.full(u.size, 3.0))
    training.epoch(2, 0.25, np.array([4.5]))
    training.epoch(3, 0.125)  # no predictions: no val_rmse
    assert history == [
        {"epoch": 1, "train_loss": 0.5, "val_rmse": 1.0},
        {"epoch": 2, "train_loss": 0.25, "val_rmse": 0.5},
        {"epoch": 3, "train_loss": 0.125},
    ]
    assert [n for n, _ in heard] == [1, 2, 3] and heard[0][1] == {
        "train_loss": 0.5,
        "val_rmse": 1.0,
    }


def test_models_report_their_curve_through_fit(tiny):
    ev = Interactions.from_frame(tiny.test, users=tiny.data.users, items=tiny.data.items)
    for name, params in [
        ("sgd-mf", {"epochs": 3}),
        ("bias", {"epochs": 3}),
        ("svdpp", {"epochs": 3}),
        ("bpmf", {"burn_in": 1, "samples": 2}),
    ]:
        model = create(name, params).fit(tiny.data, eval_data=ev)
        assert len(model.history_) == 3, name
        assert all(np.isfinite(h["train_loss"]) for h in model.history_), name
        # bpmf has a posterior mean only once it keeps draws (after burn_in)
        assert all("val_rmse" in h for h in model.history_[-2:]), name
