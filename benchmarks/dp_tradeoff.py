"""RMSE of ``dp-als`` against its privacy budget epsilon, beside the free joint-DP baselines.

    python benchmarks/dp_tradeoff.py --data synthetic:ml100k --out benchmarks/dp_tradeoff.md

On one random 80/20 split (as MovieLens-100K's u1) of the calibrated ``synthetic:ml100k`` data:

* **free under joint DP** (the user's side costs no budget): each user's own mean rating;
* **private biases**: ``dp-als`` with ``frequent_items=0``, the private global mean and item
  biases, user biases on the user's side (the model's default);
* **dp-als with factors**: the same plus private factors of the most rated items
  (``frequent_items`` of them, ``factors`` factors, ``iterations`` sweeps, ``bias_share`` of the
  budget on the biases), Chien et al. 2021's frequency-based item selection;
* the non-private ``bias`` and ``als``, and ``dp-als`` without noise.

Every private model is fitted at epsilon 0.5, 1, 2, 5 and 10 (delta 1e-6, RDP) with three noise
seeds; the table has the mean and spread, the plot the means. The script exits 1 when a target
is missed: at epsilon 1 the private biases below the user-mean baseline, at epsilon 10 within
0.03 of the non-private bias baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recsys_core.data.synthetic import config_for, generate  # noqa: E402
from recsys_core.exceptions import TrainingError  # noqa: E402
from recsys_core.features.matrix import Interactions  # noqa: E402
from recsys_core.features.splits import SplitConfig, split  # noqa: E402
from recsys_core.models import create  # noqa: E402

EPSILONS = (0.5, 1.0, 2.0, 5.0, 10.0)
NOISE_SEEDS = (0, 1, 2)
PRIVATE = {
    "dp-als default (private biases)": {"frequent_items": 0},
    "dp-als, 100 items x 3 factors": {
        "frequent_items": 100,
        "factors": 3,
        "iterations": 2,
        "bias_share": 0.8,
    },
    "dp-als, 300 items x 5 factors": {
        "frequent_items": 300,
        "factors": 5,
        "iterations": 3,
        "bias_share": 0.6,
        "init_std": 0.5,
    },
}


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def _model_rmse(model, test) -> float:
    u = model.user_vocab_.index(test["user"])
    i = model.item_vocab_.index(test["item"])
    return _rmse(model.predict_idx(u, i), test["rating"].to_numpy())


def user_mean_rmse(train: Interactions, test) -> tuple[float, int]:
    """Each user's own mean training rating (free under joint DP); a test user without training
    ratings gets the training mean. Returns the RMSE and how many test rows needed that."""
    n = np.bincount(train.user_idx, minlength=train.n_users).astype(np.float64)
    means = np.bincount(train.user_idx, train.rating, train.n_users) / np.maximum(n, 1)
    u = train.users.index(test["user"])
    known = u >= 0
    pred = np.where(known, means[np.maximum(u, 0)], float(np.mean(train.rating)))
    return _rmse(pred, test["rating"].to_numpy()), int((~known).sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="synthetic:ml100k")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).with_name("dp_tradeoff.md")))
    args = ap.parse_args()
    size = args.data.split(":", 1)[1]
    col = generate(config_for(size, seed=args.seed))
    s = split(col.interactions, SplitConfig(strategy="random", test_fraction=0.2, seed=args.seed))
    train, test = Interactions.from_frame(s.train), s.test

    ref: dict[str, float] = {}
    ref["user mean (free)"], cold_rows = user_mean_rmse(train, test)
    non_private = {
        "bias": ("bias", {}),
        "als": ("als", {}),
        "private biases, no noise": ("dp-als", {"epsilon": None}),
    }
    for label, (name, params) in non_private.items():
        ref[label] = _model_rmse(create(name, params).fit(train), test)

    results: dict[str, dict[float, list[float]]] = {k: {} for k in PRIVATE}
    refused: dict[str, list[float]] = {k: [] for k in PRIVATE}
    timings: dict[str, float] = {k: 0.0 for k in PRIVATE}
    for label, params in PRIVATE.items():
        for eps in EPSILONS:
            for noise_seed in NOISE_SEEDS:
                t = time.perf_counter()
                try:
                    model = create("dp-als", {**params, "epsilon": eps, "seed": noise_seed}).fit(
                        train
                    )
                except TrainingError:
                    refused[label].append(eps)
                    break
                timings[label] += time.perf_counter() - t
                results[label].setdefault(eps, []).append(_model_rmse(model, test))

    user_mean, bias = ref["user mean (free)"], ref["bias"]
    biases = results["dp-als default (private biases)"]
    eps1 = float(np.mean(biases[1.0])) if 1.0 in biases else float("inf")
    eps10 = float(np.mean(biases[10.0])) if 10.0 in biases else float("inf")
    ok = eps1 < user_mean and eps10 - bias <= 0.03
    lines = [
        f"# dp-als against epsilon ({args.data}, split seed {args.seed}, delta 1e-6, RDP)",
        "",
        f"Random 80/20 split (as ML-100K u1): {train.n_users} users, {train.n_items} items, "
        f"{len(train)} training and {len(test)} test ratings ({cold_rows} test rows of users "
        "without training ratings). Private rows: mean (and spread) over noise seeds "
        f"{', '.join(map(str, NOISE_SEEDS))}.",
        "",
        "Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs; command: `python "
        f"benchmarks/dp_tradeoff.py --data {args.data} --seed {args.seed}`.",
        "",
        "## Non-private and free references",
        "",
        "| model | test RMSE |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in ref.items()],
        "",
        "## Private models (test RMSE)",
        "",
        "| model | " + " | ".join(f"eps {e:g}" for e in EPSILONS) + " | fit s (all) |",
        "|---|" + "---|" * (len(EPSILONS) + 1),
    ]
    for label in PRIVATE:
        cells = []
        for eps in EPSILONS:
            vals = results[label].get(eps)
            cells.append(
                f"{np.mean(vals):.4f} ± {np.std(vals):.4f}" if vals else "refused: too few users"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {timings[label]:.1f} |")
    lines += [
        "",
        "## Targets",
        "",
        f"- epsilon 1: dp-als {eps1:.4f} vs the user-mean baseline {user_mean:.4f} "
        f"({'below' if eps1 < user_mean else 'NOT below'}; ratio {eps1 / user_mean:.4f}).",
        f"- epsilon 10: dp-als {eps10:.4f} vs the non-private bias baseline {bias:.4f} "
        f"(gap {eps10 - bias:+.4f}, target within 0.03: "
        f"{'met' if eps10 - bias <= 0.03 else 'missed'}).",
    ]
    any_wins = False
    for label in list(PRIVATE)[1:]:
        wins = [
            f"{e:g}"
            for e in EPSILONS
            if e in results[label] and e in biases
            if np.mean(results[label][e]) < np.mean(biases[e])
        ]
        any_wins = any_wins or bool(wins)
        lines.append(f"- {label}: below the private biases at epsilon {', '.join(wins) or 'none'}.")
    if not any_wins:
        lines += [
            "",
            f"With {train.n_users} users no factor release pays for its share of the budget: "
            "the noise on the frequent items' Gram matrices is of the order of their signal "
            "even at epsilon 10, and the budget they take from the biases costs more than "
            "they give. So `dp-als` defaults to `frequent_items=0` (biases only); the factor "
            "stage is there for data with many more users per item (Chien et al. 2021 measure "
            "on MovieLens-10M/20M, 70k-138k users), where the same noise is a smaller share of "
            "each item's statistics.",
        ]
    out = Path(args.out)
    out.write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, label in enumerate(PRIVATE):
        xs = sorted(results[label])
        ax.errorbar(
            xs,
            [np.mean(results[label][x]) for x in xs],
            yerr=[np.std(results[label][x]) for x in xs],
            fmt="o-",
            color=f"C{n}",
            label=label,
            capsize=3,
        )
    ax.axhline(user_mean, color="C3", ls="--", label="user mean (free under joint DP)")
    ax.axhline(bias, color="C4", ls="-.", label="bias (non-private)")
    ax.axhline(ref["als"], color="C5", ls=":", label="als (non-private)")
    ax.set_xscale("log")
    ax.set_xticks(EPSILONS, [f"{e:g}" for e in EPSILONS])
    ax.set_xlabel("epsilon (delta 1e-6, RDP)")
    ax.set_ylabel("test RMSE")
    ax.set_title(f"dp-als on {args.data}, random 80/20")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
