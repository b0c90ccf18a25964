"""mult-vae against ease and popularity on the same split of MovieLens-shaped data.

    nice python benchmarks/neural.py                                  # synthetic:ml100k
    python benchmarks/neural.py --profiles ml100k ml1m --out benchmarks/results-neural.md
    python benchmarks/neural.py --params epochs=50 latent_dim=100      # mult-vae overrides

Each profile (``recsys_core.data.synthetic``: ``ml100k``, ``ml1m``) is split at random 80/20
(seed 42) and every model is fitted on the same training part and evaluated by ``evaluate``
(the test items of each user against their top-10, training items excluded). Reported: NDCG@10,
recall@10, fit time (wall, and the CPU time of every thread of the process, which a loaded machine
does not inflate), and for mult-vae the device it trained on, the epochs it ran and the one it
kept; beside them the difference to ``ease`` on the same split (NDCG@10) and the ratio of fit
times. PyTorch's threads are ``RECSYS_TORCH_THREADS`` (default: PyTorch's own). The
machine's load (``os.getloadavg``) is printed with the results: on a shared machine the times
are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from recsys_core.data import synthetic  # noqa: E402
from recsys_core.evaluation.evaluate import evaluate  # noqa: E402
from recsys_core.features import Interactions, SplitConfig, split  # noqa: E402
from recsys_core.models import create  # noqa: E402
from recsys_core.models.registry import parse_params  # noqa: E402
from recsys_core.settings import get_settings  # noqa: E402

MODELS = ("popularity", "ease", "mult-vae")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def run(profile: str, vae_params: dict, seed: int) -> list[dict]:
    frame = synthetic.generate(synthetic.config_for(profile, seed=seed)).interactions
    parts = split(frame, SplitConfig(strategy="random", seed=seed))
    data = Interactions.from_frame(parts.train)
    rows = []
    for name in MODELS:
        model = create(name, vae_params if name == "mult-vae" else {})
        started, cpu = time.perf_counter(), time.process_time()
        model.fit(data)
        fit_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu  # every thread of the process: the load-free cost
        metrics = evaluate(model, parts.train, parts.test).metrics
        row = {
            "profile": profile,
            "ratings": len(frame),
            "model": name,
            "ndcg": metrics["ndcg_at_10"],
            "recall": metrics["recall_at_10"],
            "fit_s": fit_s,
            "cpu_s": cpu_s,
            "device": getattr(model, "device_", "cpu (numpy)"),
            "epochs": (
                f"{model.best_epoch_} of {model.epochs_run_}" if name == "mult-vae" else "-"
            ),
            "load": _load(),
        }
        print(
            f"{profile} {name}: NDCG@10 {row['ndcg']:.4f} recall@10 {row['recall']:.4f} "
            f"fit {fit_s:.1f} s ({row['device']}; {row['load']})",
            flush=True,
        )
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| profile | ratings | model | NDCG@10 | recall@10 | NDCG@10 - ease | fit (s, wall) "
        "| fit / ease | fit (CPU s) | device | epochs (kept of run) | load during the fit |",
        "|" + "---|" * 12,
    ]
    for row in rows:
        ease = next(r for r in rows if r["profile"] == row["profile"] and r["model"] == "ease")
        lines.append(
            f"| {row['profile']} | {row['ratings']:,} | {row['model']} | {row['ndcg']:.4f} "
            f"| {row['recall']:.4f} | {row['ndcg'] - ease['ndcg']:+.4f} | {row['fit_s']:.1f} "
            f"| {row['fit_s'] / ease['fit_s']:.1f}x | {row['cpu_s']:.1f} | {row['device']} "
            f"| {row['epochs']} "
            f"| {row['load']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["ml100k"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", nargs="*", default=[], help="mult-vae key=value overrides")
    parser.add_argument("--out", type=Path, default=None, help="append the table to this file")
    args = parser.parse_args(argv)
    vae_params = parse_params(args.params)
    rows: list[dict] = []
    for profile in args.profiles:
        rows += run(profile, vae_params, args.seed)
    text = (
        f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`python benchmarks/neural.py --profiles {' '.join(args.profiles)}"
        + (f" --params {' '.join(args.params)}" if args.params else "")
        + f"`\n\n{platform.processor() or platform.machine()}, "
        f"RECSYS_TORCH_THREADS={get_settings().training.torch_threads or '(unset)'}\n\n"
        + table(rows)
    )
    print(text)
    if args.out is not None:
        with args.out.open("a") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
