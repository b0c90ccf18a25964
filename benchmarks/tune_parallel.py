"""Parallel tuning trials: speed-up of 2 trials at once over 1, and who holds the GIL.

    python benchmarks/tune_parallel.py                       # sgd-mf on the 100k set
    python benchmarks/tune_parallel.py --model als --size 1m --params '{"iterations": 10}'

A trial is the tune flow's trial body (``recsys_core.tuning.score_trial``: fit on the validation
split's training part, then ``evaluate``), without MLflow. Four trials (seeds 1-4) run on a Dask
``LocalCluster`` like the one ``flows/tune.py`` starts: one worker, two thread workers
(``processes=False``, the flow's default) and two process workers. Reported: wall time, CPU time
of this process (the thread workers' included) and the speed-up over one worker.

The GIL: while one trial runs in a thread of this process, a second thread wakes every 5 ms and
records how late it wakes: lateness is time another thread held the GIL (numba kernels
compiled without ``nogil=True`` hold it throughout; BLAS and most numpy loops release it).
Reported: the longest hold and the share of the trial's wall time the ticker waited for the GIL
(wake-ups later than 2 ms), which a second trial thread would also have waited.

The machine's load is printed: on a shared machine, wall-time ratios are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _features(size: str, folder: str):
    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.features.prepare import build
    from recsys_core.features.splits import SplitConfig

    collected = generate(config_for(size))
    return build(collected.interactions, collected.items, SplitConfig(), folder)


def trial(model: str, params: dict, feats, seed: int) -> float:
    """One trial body: fit and score; returns the RMSE or NDCG it would tell the study."""
    from recsys_core.models.spec import ModelSpec
    from recsys_core.tuning import score_trial

    metrics = score_trial(ModelSpec(name=model, params={**params, "seed": seed}), feats, k=10)
    return metrics.get("rmse", metrics.get("ndcg_at_10", float("nan")))


def gil_holds(fn, threshold: float = 0.002) -> tuple[float, float, float]:
    """Run ``fn`` in a thread; (wall s, longest GIL hold s, share of wall in holds > threshold)."""
    done = threading.Event()
    lates: list[float] = []

    def ticker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            time.sleep(0.005)
            lates.append(time.perf_counter() - t - 0.005)

    tick = threading.Thread(target=ticker)
    work = threading.Thread(target=fn)
    t0 = time.perf_counter()
    tick.start()
    work.start()
    work.join()
    wall = time.perf_counter() - t0
    done.set()
    tick.join()
    held = [x for x in lates if x > threshold]
    return wall, max(lates, default=0.0), sum(held) / wall


def on_cluster(
    n_workers: int, processes: bool, model: str, params: dict, feats, n_trials: int
) -> tuple[float, float]:
    """Wall and CPU seconds (of this process) of ``n_trials`` trials on a local Dask cluster."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(trial, model, params, feats, 0)  # warm every worker: imports, numba cache
        c0, t0 = time.process_time(), time.perf_counter()
        futures = [
            client.submit(trial, model, params, feats, s, pure=False)
            for s in range(1, n_trials + 1)
        ]
        client.gather(futures)
        return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sgd-mf")
    ap.add_argument("--size", default="100k", help="synthetic preset (small, 100k, 1m, ...)")
    ap.add_argument("--params", default='{"epochs": 20, "factors": 32}', type=json.loads)
    ap.add_argument("--trials", type=int, default=4)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recsys-tune-bench-") as tmp:
        feats = _features(args.size, tmp)
        trial(args.model, args.params, feats, 0)  # compile once, outside every clock
        wall, longest, share = gil_holds(lambda: trial(args.model, args.params, feats, 1))
        print(
            f"{args.model} on {args.size}: one trial {wall:.2f} s wall; GIL held up to "
            f"{longest:.2f} s at a stretch, {share:.0%} of the trial's wall time"
        )
        base = None
        for label, n, processes in (
            ("1 worker", 1, False),
            ("2 threads", 2, False),
            ("2 processes", 2, True),
        ):
            wall, cpu = on_cluster(n, processes, args.model, args.params, feats, args.trials)
            base = base or wall
            cpu_note = "" if processes else f", CPU {cpu:.1f} s ({cpu / wall:.2f} cores busy)"
            print(
                f"{label:>12}: {args.trials} trials in {wall:.1f} s wall{cpu_note}; "
                f"speed-up {base / wall:.2f}x"
            )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
