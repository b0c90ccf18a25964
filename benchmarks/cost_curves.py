"""Cost curves: fit time, peak memory and time per iteration against the number of ratings.

    python benchmarks/cost_curves.py                                   # 1M, every model
    python benchmarks/cost_curves.py --sizes 1M 5M --out benchmarks/results-cost-curves.md
    python benchmarks/cost_curves.py --sizes 25M --models sgd-mf --append
    python benchmarks/cost_curves.py --report --out results.md --plot cost.png   # no runs

MovieLens-shaped synthetic ratings (the 25M shape: 162K users, 59K items; users and items scale
with the size like MovieLens 1M/10M/25M), half-star ratings from a low-rank model with biases
and noise, long-tailed user activity and item popularity, int32 ids and float32 values. Each
(model, size) runs in a fresh child process that generates the data with a fixed seed and fits
once; the parent samples the resident memory (RSS) of the child and of every process it starts
(Spark's JVM included) from /proc every 0.2 s, because tracemalloc sees neither numba's nor the
JVM's allocations. Reported: fit time, fit time per iteration/epoch, peak RSS of the whole
process tree and the RSS before the fit (data generated), and the ratios of our trainers to
Spark's ALS (``local[2]``) at equal rank and iterations. A plot of cost against size goes next
to the results (``--plot``).

Linux only (/proc). The machine's load is printed with the results: figures measured on a shared
machine are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"100K": 100_000, "1M": 1_000_000, "5M": 5_000_000, "10M": 10_000_000, "25M": 25_000_000}
# MovieLens 25M: 162,541 users and 59,047 items
USERS_PER_RATING = 162_541 / 25_000_000
ITEMS_AT_25M = 59_047

# equal rank and iterations between our ALS trainers and Spark's; SGD MF at the issue's target
MODELS = {
    "sgd-mf": ({"factors": 64, "epochs": 20}, "epochs"),
    "als": ({"factors": 32, "iterations": 10}, "iterations"),
    "spark-als": ({"rank": 32, "maxIter": 10}, "maxIter"),
    "implicit-als": ({"factors": 32, "iterations": 10, "weighting": "none"}, "iterations"),
    "spark-als-implicit": ({"rank": 32, "maxIter": 10}, "maxIter"),
}
PAIRS = [("als", "spark-als"), ("implicit-als", "spark-als-implicit")]


def shape(n_ratings: int) -> tuple[int, int]:
    """Users and items of a MovieLens-shaped set of ``n_ratings``."""
    users = max(int(n_ratings * USERS_PER_RATING), 100)
    # items grow slower than ratings (ML-1M: 3.7K, ML-10M: 10.7K, ML-25M: 59K)
    items = max(int(ITEMS_AT_25M * (n_ratings / 25_000_000) ** 0.75), 50)
    return users, items


def generate(n_ratings: int, seed: int = 0):
    """MovieLens-shaped ``Interactions`` with about ``n_ratings`` distinct (user, item) pairs."""
    from recsys_core.features.ids import IdVocab
    from recsys_core.features.matrix import Interactions

    rng = np.random.default_rng(seed)
    n_users, n_items = shape(n_ratings)
    # long-tailed activity (at least 20 ratings a user, as in MovieLens) and popularity
    activity = rng.lognormal(0.0, 1.0, n_users)
    n_draws = int(n_ratings * 1.15)  # about 13% of the draws repeat a pair and are dropped
    counts = 20 + np.floor(activity / activity.sum() * (n_draws - 20 * n_users)).astype(np.int64)
    counts = np.minimum(counts, n_items // 2)
    popularity = 1.0 / (np.arange(n_items) + 10.0) ** 0.9
    popularity /= popularity.sum()
    user = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    item = rng.choice(n_items, size=user.size, p=popularity).astype(np.int32)
    key = np.unique(user.astype(np.int64) * n_items + item)  # one rating per pair, sorted
    user, item = (key // n_items).astype(np.int32), (key % n_items).astype(np.int32)
    del key
    k = 8
    P = rng.normal(0, 0.35, (n_users, k)).astype(np.float32)
    Q = rng.normal(0, 0.35, (n_items, k)).astype(np.float32)
    bu = rng.normal(0, 0.3, n_users).astype(np.float32)
    bi = rng.normal(0, 0.4, n_items).astype(np.float32)
    rating = np.empty(user.size, dtype=np.float32)
    for start in range(0, user.size, 2_000_000):  # bounded temporaries
        sl = slice(start, start + 2_000_000)
        u, i = user[sl], item[sl]
        r = 3.5 + bu[u] + bi[i] + np.einsum("nk,nk->n", P[u], Q[i])
        r += rng.normal(0, 0.7, u.size).astype(np.float32)
        rating[sl] = np.clip(np.round(r * 2) / 2, 0.5, 5.0)
    return Interactions(
        users=IdVocab(np.arange(n_users).astype(str)),
        items=IdVocab(np.arange(n_items).astype(str)),
        user_idx=user,
        item_idx=item,
        rating=rating,
        timestamp=np.zeros(user.size, dtype=np.int64),
    )


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return out


def worker(model: str, size: str) -> None:
    """Child process: generate, fit once, print one JSON line."""
    from recsys_core.models import create

    params, iter_key = MODELS[model]
    t0 = time.perf_counter()
    data = generate(SIZES[size])
    gen_s = time.perf_counter() - t0
    rss_before = _rss_kb(os.getpid())
    rec = create(model, params)
    if model.startswith("spark"):
        # the JVM start is a fixed cost, not a cost of the data: started before the clock
        from recsys_core.spark.session import spark_session

        spark_session()
    t0 = time.perf_counter()
    rec.fit(data)
    fit_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "model": model,
                "size": size,
                "ratings": len(data),
                "users": data.n_users,
                "items": data.n_items,
                "generate_s": gen_s,
                "fit_s": fit_s,
                "per_iteration_s": fit_s / params[iter_key],
                "iterations": params[iter_key],
                "rss_before_mb": rss_before / 1024,
            }
        ),
        flush=True,
    )


def default_timeout(size: str) -> float:
    """Seconds allowed to one (model, size): 15 min plus 2.5 min per million ratings (25M: 77
    min), room for Spark ``local[2]`` on a loaded 2-core machine."""
    return 900.0 + 150.0 * SIZES[size] / 1e6


def measure(model: str, size: str, timeout: float | None = None) -> dict:
    """Run one worker, sampling its process tree's RSS; the worker's result plus the peak."""
    timeout = timeout or default_timeout(size)
    env = dict(
        os.environ,
        RECSYS_SPARK_MASTER=os.environ.get("RECSYS_SPARK_MASTER", "local[2]"),
        RECSYS_SPARK_DRIVER_MEMORY=os.environ.get("RECSYS_SPARK_DRIVER_MEMORY", "6g"),
        # spark.network.timeout is 6 x this: a long GC pause or a slow shuffle at 25M on
        # two busy cores must not be taken for a lost executor (60 s by default)
        RECSYS_SPARK_CONNECT_TIMEOUT=os.environ.get("RECSYS_SPARK_CONNECT_TIMEOUT", "30"),
    )
    errors = tempfile.TemporaryFile(mode="w+")  # the reason of a failure (Spark's included)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", model, size],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
        start_new_session=True,  # a timeout kills the whole group: Spark's JVM with it
    )
    peak, started = 0, time.monotonic()
    while proc.poll() is None:
        peak = max(peak, sum(_rss_kb(p) for p in _tree(proc.pid)))
        if time.monotonic() - started > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {
                "model": model,
                "size": size,
                "error": f"timed out after {timeout:.0f}s",
                "peak_rss_mb": peak / 1024,
            }
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        errors.seek(0)
        last = [
            ln.strip() for ln in errors.read().splitlines() if "Error" in ln or "Exception" in ln
        ][-1:]
        return {
            "model": model,
            "size": size,
            "error": f"exit code {proc.returncode}" + "".join(f": {ln[:300]}" for ln in last),
        }
    errors.close()
    return {**json.loads(lines[-1]), "peak_rss_mb": peak / 1024}


def table(results: list[dict]) -> str:
    rows = [
        "| model | size | ratings | users | items | fit s | s / iteration | peak RSS MB "
        "| RSS before fit MB | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        load = f"{r['load_avg']:.1f}" if "load_avg" in r else ""
        if "error" in r:
            rows.append(f"| {r['model']} | {r['size']} | | | | {r['error']} | | | | {load} |")
            continue
        rows.append(
            f"| {r['model']} | {r['size']} | {r['ratings']:,} | {r['users']:,} | {r['items']:,} "
            f"| {r['fit_s']:.1f} | {r['per_iteration_s']:.2f} | {r['peak_rss_mb']:.0f} "
            f"| {r['rss_before_mb']:.0f} | {load} |"
        )
    ok = {(r["model"], r["size"]): r for r in results if "error" not in r}
    ratios = [
        "",
        "| ours / Spark local[2] | size | fit-time ratio | peak-RSS ratio |",
        "|---|---|---:|---:|",
    ]
    for ours, spark in PAIRS:
        for size in SIZES:
            a, b = ok.get((ours, size)), ok.get((spark, size))
            if a and b:
                ratios.append(
                    f"| {ours} / {spark} | {size} | {a['fit_s'] / b['fit_s']:.3f} "
                    f"| {a['peak_rss_mb'] / b['peak_rss_mb']:.2f} |"
                )
    return "\n".join(rows + ratios) + "\n"


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for model in MODELS:
        pts = sorted(
            (r["ratings"], r["fit_s"], r["peak_rss_mb"], r.get("load_avg", 99.0))
            for r in results
            if r.get("model") == model and "error" not in r
        )
        if not pts:
            continue
        x = [p[0] / 1e6 for p in pts]
        ax_t.plot(x, [p[1] for p in pts], "o-", label=model)
        ax_m.plot(x, [p[2] / 1024 for p in pts], "o-", label=model)
        for ratings, fit_s, rss, load in pts:  # a time measured on a quiet machine is not an
            if load < 2:  # upper bound like the others: marked
                ax_t.annotate(
                    "quiet",
                    (ratings / 1e6, fit_s),
                    textcoords="offset points",
                    xytext=(-12, 8),
                    fontsize=7,
                )
                ax_m.annotate(
                    "quiet",
                    (ratings / 1e6, rss / 1024),
                    textcoords="offset points",
                    xytext=(-12, 8),
                    fontsize=7,
                )
    ax_t.set(
        xlabel="ratings (millions)",
        ylabel="fit time (s)",
        title="Fit time (loaded machine: upper bounds)",
    )
    ax_m.set(xlabel="ratings (millions)", ylabel="peak RSS (GB)", title="Peak memory")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1M"], choices=list(SIZES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per (model, size); default: 900 + 150 per million ratings",
    )
    ap.add_argument(
        "--json",
        type=Path,
        default=ROOT / "benchmarks" / "cost-curves.json",
        help="raw results; --append adds to it",
    )
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--out", type=Path, help="write the Markdown table here")
    ap.add_argument("--plot", type=Path, help="write the cost-against-size plot (png) here")
    ap.add_argument(
        "--report",
        action="store_true",
        help="measure nothing: the table and plot of the results in --json",
    )
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    keep = (args.append or args.report) and args.json.exists()
    results = json.loads(args.json.read_text()) if keep else []
    for size in [] if args.report else args.sizes:
        for model in args.models:
            r = measure(model, size, args.timeout)
            r["load_avg"] = os.getloadavg()[0]
            print(json.dumps(r), flush=True)
            results = [x for x in results if (x["model"], x["size"]) != (model, size)] + [r]
            args.json.write_text(json.dumps(results, indent=1))
    results.sort(key=lambda r: (list(MODELS).index(r["model"]), SIZES[r["size"]]))
    text = table(results)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
