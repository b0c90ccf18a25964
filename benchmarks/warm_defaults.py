"""The rating defaults on MovieLens-shaped data: bias, sgd-mf with Surprise's defaults, and
sgd-mf with its own (retuned) defaults, on warm users under the 80/20 time split.

    nice python benchmarks/warm_defaults.py                 # synthetic:ml100k, seeds 42 and 7

Warm users are the test users with at least one rating before the cutoff; the margin is the bias
baseline's RMSE minus the model's (positive: the model is better).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from recsys_core.data import synthetic  # noqa: E402
from recsys_core.features import Interactions, SplitConfig, split  # noqa: E402
from recsys_core.models import create  # noqa: E402

SURPRISE = {"factors": 100, "epochs": 20, "lr": 0.005, "reg": 0.02}


def _rmse(model, test) -> float:
    u = model.user_vocab_.index(test["user"])
    i = model.item_vocab_.index(test["item"])
    return float(np.sqrt(np.mean((model.predict_idx(u, i) - test["rating"].to_numpy()) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ml100k")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 7])
    args = parser.parse_args(argv)
    print(
        "| seed | warm test rows | bias | sgd-mf (Surprise defaults) | sgd-mf (defaults) "
        "| margin of the defaults over bias |"
    )
    print("|---|---|---|---|---|---|")
    for seed in args.seeds:
        frame = synthetic.generate(synthetic.config_for(args.profile, seed=seed)).interactions
        parts = split(frame, SplitConfig(strategy="time"))
        data = Interactions.from_frame(parts.train)
        warm = parts.test[parts.test["user"].isin(set(parts.train["user"]))]
        bias = _rmse(create("bias").fit(data), warm)
        old = _rmse(create("sgd-mf", SURPRISE).fit(data), warm)
        new = _rmse(create("sgd-mf").fit(data), warm)
        print(
            f"| {seed} | {len(warm):,} | {bias:.4f} | {old:.4f} | {new:.4f} | {bias - new:+.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
