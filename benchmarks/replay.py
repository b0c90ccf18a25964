"""Replay (prequential evaluation) speed at 1M ratings.

    nice python benchmarks/replay.py                         # synthetic:ml1m, 80/20 by time
    nice python benchmarks/replay.py --data synthetic:ml100k --models popularity ease

For each model: the fit on the rows before the cutoff, the batch evaluation of the test period
(``evaluate``: one list per user, the peer measured in the same run), and the replay
(``replay``: one list per test interaction, each user's earlier test items folded in). The
replay answers about ``test rows / test users`` times more lists than the batch evaluation;
``per 1k lists`` puts both on the same footing. ``--reference N`` also times the service's
``Scorer.recommend`` one request at a time on the first ``N`` interactions of the replay order,
and extrapolates it to the whole test period: what an unbatched replay would cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from recsys_core.data import collect  # noqa: E402
from recsys_core.evaluation import evaluate  # noqa: E402
from recsys_core.evaluation.replay import replay  # noqa: E402
from recsys_core.features import Interactions, SplitConfig, split  # noqa: E402
from recsys_core.models import create  # noqa: E402
from recsys_core.serving.scorer import Scorer  # noqa: E402


def reference_seconds(model, test, n: int) -> float:
    """Seconds of ``n`` one-at-a-time Scorer requests in the replay's order."""
    scorer = Scorer(model)
    test = test.reset_index(drop=True)
    order = np.lexsort((test["timestamp"].to_numpy(), test["user"].astype(str).to_numpy()))
    users, items = test["user"].astype(str).to_numpy(), test["item"].astype(str).to_numpy()
    history: dict[str, list[str]] = {}
    started = time.perf_counter()
    for row in order[:n]:
        recent = history.setdefault(users[row], [])
        scorer.recommend(users[row], 10, recent_items=recent)
        recent.append(items[row])
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:ml1m")
    parser.add_argument("--models", nargs="+", default=["popularity", "ease", "sgd-mf"])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--reference",
        type=int,
        default=2000,
        help="one-at-a-time Scorer requests timed per model (0: none)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    frame = collect(args.data).interactions
    parts = split(frame, SplitConfig(strategy="replay"))
    gen = time.perf_counter() - started
    test = parts.test
    n_users = test["user"].nunique()
    print(
        f"{args.data}: {len(frame):,} ratings, {len(parts.train):,} before the cutoff, "
        f"{len(test):,} test rows of {n_users:,} users ({parts.info['cold_users']:,} cold); "
        f"read and split in {gen:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    print()
    print(
        "| model | fit s | evaluate s | replay s | replay / evaluate | per 1k lists: evaluate "
        "/ replay s | one-at-a-time (extrapolated) s | NDCG@10 replay |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = create(name)
        t0 = time.perf_counter()
        model.fit(Interactions.from_frame(parts.train))
        fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        evaluate(model, parts.train, test, k=args.k)
        ev = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = replay(model, test, k=args.k)
        rp = time.perf_counter() - t0
        ref = "-"
        if args.reference:
            n = min(args.reference, len(test))
            ref = f"{reference_seconds(model, test, n) * len(test) / n:.0f}"
        print(
            f"| {name} | {fit:.1f} | {ev:.1f} | {rp:.1f} | {rp / ev:.1f} | "
            f"{1000 * ev / n_users:.3f} / {1000 * rp / len(test):.3f} | {ref} | "
            f"{result.metrics[f'ndcg_at_{args.k}']:.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
