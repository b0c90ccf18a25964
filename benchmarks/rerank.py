"""``rerank`` against each of its own retrievers on the same split: NDCG@10, recall@10, fit
time and the in-process latency of one user's list.

    nice python benchmarks/rerank.py                          # synthetic:ml100k, random 80/20
    nice python benchmarks/rerank.py --profile ml1m --write   # the 1M-ratings shape

Every model is fitted on the same training part and evaluated by ``recsys_core.evaluation``
(each user's training items excluded). Fit time is reported as wall and CPU seconds (the CPU
time of this process, all its threads: what a loaded machine does not inflate). The latency is
that of ``Scorer.recommend`` (k=10) for one known user at a time, in this process, over
``--latency-users`` users; p50 and p99 in ms.
The retrievers are those of rerank's default configuration, with their defaults. The note
(``--write``) goes to ``benchmarks/results-rerank.md``, with the machine load at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from recsys_core.data import synthetic  # noqa: E402
from recsys_core.evaluation.evaluate import evaluate  # noqa: E402
from recsys_core.features import Interactions, SplitConfig, split  # noqa: E402
from recsys_core.models import create  # noqa: E402
from recsys_core.serving.scorer import Scorer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results-rerank.md"


def _latency(model, users: list[str]) -> tuple[float, float]:
    scorer = Scorer(model)
    scorer.recommend(users[0], 10)  # warm the caches
    times = []
    for user in users:
        start = time.perf_counter()
        scorer.recommend(user, 10)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ml100k", help="synthetic size or profile")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--split", default="random", choices=["random", "time"])
    parser.add_argument("--latency-users", type=int, default=300)
    parser.add_argument("--param", action="append", default=[], help="rerank key=json value")
    parser.add_argument(
        "--compare", nargs="*", help="retrievers to measure beside rerank (default: all of its own)"
    )
    parser.add_argument("--write", action="store_true", help=f"append the table to {RESULTS}")
    args = parser.parse_args(argv)
    params = {}
    for pair in args.param:
        key, _, value = pair.partition("=")
        params[key] = json.loads(value)
    load = os.getloadavg()
    col = synthetic.generate(synthetic.config_for(args.profile, seed=args.seed))
    parts = split(col.interactions, SplitConfig(strategy=args.split, seed=args.seed))
    data = Interactions.from_frame(parts.train, item_meta=col.items)
    rng = np.random.default_rng(args.seed)
    users = parts.test["user"].astype(str).unique()
    known = set(parts.train["user"].astype(str))
    users = [u for u in users if u in known]
    lat_users = list(rng.choice(users, min(args.latency_users, len(users)), replace=False))

    rerank = create("rerank", params)
    rows = []
    own = rerank.get_params()["retrievers"]
    if args.compare is not None:
        own = [r for r in own if r["model"] in args.compare]
    for spec in [*own, {"model": "rerank", "params": params}]:
        model = create(spec["model"], spec["params"])
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(data)
        fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
        metrics = evaluate(model, parts.train, parts.test).metrics
        p50, p99 = _latency(model, lat_users)
        rows.append(
            (
                spec["model"],
                metrics["ndcg_at_10"],
                metrics["recall_at_10"],
                fit_s,
                fit_cpu,
                p50,
                p99,
            )
        )
        print(rows[-1], flush=True)
    best = max(rows[:-1], key=lambda r: r[1])
    rr = rows[-1]
    lines = [
        f"## synthetic:{args.profile}, seed {args.seed}, {args.split} 80/20 split "
        f"({len(parts.train):,} training, {len(parts.test):,} test ratings)",
        "",
        f"rerank params: {json.dumps(params) if params else 'defaults'}; load average at the "
        f"start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores.",
        "",
        "| model | NDCG@10 | recall@10 | fit s | fit CPU s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {a:.4f} | {b:.4f} | {f:.1f} | {c:.1f} | {p:.2f} | {q:.2f} |"
        for n, a, b, f, c, p, q in rows
    ]
    lines += [
        "",
        f"rerank - best retriever ({best[0]}): NDCG@10 {rr[1] - best[1]:+.4f} "
        f"({rr[1] / best[1]:.3f}x), recall@10 {rr[2] - best[2]:+.4f}; rerank's fit "
        f"{rr[3] / best[3]:.1f}x the best retriever's ({rr[4] / max(best[4], 1e-9):.1f}x in CPU "
        "time, which the machine's load does not inflate).",
        "",
    ]
    print("\n".join(lines))
    if args.write:
        with RESULTS.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
