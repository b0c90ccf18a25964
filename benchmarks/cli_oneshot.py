"""One-shot command line against Surprise's one-shot script: a fresh process each, same files.

    python benchmarks/cli_oneshot.py                  # ML-100K-shaped synthetic files, 5 rounds
    python benchmarks/cli_oneshot.py --rounds 9 --folder /tmp/oneshot

Each round starts, in turn, ``recsys evaluate --train F --test G`` (sgd-mf at Surprise SVD's
parameters: 100 factors, 20 epochs, lr 0.005, reg 0.02), the same with ``--metrics rating``, and
a Python process that does what a Surprise user's script does: read the two CSV files with
pandas, fit ``surprise.SVD`` on the first, predict the second and compute its RMSE. ``recsys
evaluate`` does more: it validates the files and computes MAE and the populations' figures
(warm, cold users and items) besides RMSE, and by default the top-10 ranking metrics over the
whole catalogue; ``--metrics rating`` leaves those out, which is the work Surprise's script does.
A first run of each ``recsys evaluate`` before the rounds fills numba's cache of compiled
kernels (what a second run on any machine finds); the first one's time is reported apart.

Prints the medians of the wall time and of the CPU time (user + system of the child) of each
side, their ratios (Surprise / recsys: above 1 means recsys is faster) and the load average
before and after the rounds, as JSON. On a busy machine compare the CPU ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PARAMS = {"factors": 100, "epochs": 20, "lr": 0.005, "reg": 0.02}
"""Surprise SVD's defaults (n_factors, n_epochs, lr_all, reg_all), given to sgd-mf too."""

SURPRISE_SCRIPT = """
import sys
import pandas as pd
from surprise import SVD, Dataset, Reader, accuracy

train = pd.read_csv(sys.argv[1])
test = pd.read_csv(sys.argv[2])
data = Dataset.load_from_df(train[["user", "item", "rating"]], Reader(rating_scale=(1, 5)))
algo = SVD(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02, random_state=0)
algo.fit(data.build_full_trainset())
pred = algo.test(list(zip(test["user"], test["item"], test["rating"])))
print(accuracy.rmse(pred, verbose=False))
"""


def make_files(folder: Path, seed: int) -> tuple[Path, Path]:
    from recsys_core.data.synthetic import config_for, generate

    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "train.csv", folder / "test.csv"
    if not (train.exists() and test.exists()):
        frame = generate(config_for("ml100k", seed=seed)).interactions
        held = np.random.default_rng(seed).random(len(frame)) < 0.2
        frame[~held].to_csv(train, index=False)
        frame[held].to_csv(test, index=False)
    return train, test


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=Path("/tmp/recsys-oneshot"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    train, test = make_files(args.folder, args.seed)
    recsys = [sys.executable, "-m", "recsys_cli.main", "evaluate"]
    recsys += ["--train", str(train), "--test", str(test), "--json"]
    for key, value in PARAMS.items():
        recsys += ["--param", f"{key}={value}"]
    rating = [*recsys, "--metrics", "rating"]
    surprise = [sys.executable, "-c", SURPRISE_SCRIPT, str(train), str(test)]
    first_wall, _, _ = timed(recsys)
    timed(rating)
    commands = {"recsys": recsys, "recsys_rating": rating, "surprise": surprise}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    rmse: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, cmd in commands.items():
            wall, cpu, out = timed(cmd)
            runs[name].append((wall, cpu))
            rmse[name] = float(out.strip()) if name == "surprise" else json.loads(out)["rmse"]
    med = {
        name: (float(np.median([w for w, _ in r])), float(np.median([c for _, c in r])))
        for name, r in runs.items()
    }
    result: dict = {
        "ratings": sum(1 for _ in train.open()) - 1,
        "rounds": args.rounds,
        "recsys_first_run_s": round(first_wall, 2),
    }
    for name in commands:
        result[f"{name}_wall_s"] = round(med[name][0], 2)
        result[f"{name}_cpu_s"] = round(med[name][1], 2)
    for name, label in (("recsys", ""), ("recsys_rating", "_rating")):
        result[f"ratio{label}_wall"] = round(med["surprise"][0] / med[name][0], 2)
        result[f"ratio{label}_cpu"] = round(med["surprise"][1] / med[name][1], 2)
    result.update(
        {
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "rmse": {k: round(v, 4) for k, v in rmse.items()},
            "command": " ".join(recsys[2:]),
        }
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
