"""Per-stage costs of ``recsys evaluate``'s work: read, map the ids, fit, evaluate (top-k inside).

    python benchmarks/evaluation_stages.py --generate DIR --users 8000 --items 59047 \\
        --ratings 1000000                      # a train/test Parquet pair, 2% of rows held out
    python benchmarks/evaluation_stages.py --generate DIR --size 25m --test-rows 200000 --all
                                               # the MovieLens-25M shape, 200,000 random test
                                               # rows, and all.parquet (every row) for the flow
    /usr/bin/time -f "%e s, %M KB" python benchmarks/evaluation_stages.py DIR --model sgd-mf

Prints one JSON line: the seconds of each stage, the peak RSS of the process, NDCG@10 and the
ranked users. Run the previous code and this code in turn on the same files (``PYTHONPATH`` at a
checkout of the previous commit) and compare the ratios: on a shared machine the absolute times
move with the load.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def generate(
    folder: Path,
    users: int,
    items: int,
    ratings: int,
    seed: int,
    size: str | None = None,
    test_rows: int | None = None,
    write_all: bool = False,
) -> None:
    from recsys_core.data.synthetic import SyntheticConfig, config_for
    from recsys_core.data.synthetic import generate as synth

    if size:
        cfg = config_for(size, seed=seed)
    else:
        cfg = SyntheticConfig(n_users=users, n_items=items, n_ratings=ratings, seed=seed)
    t = time.perf_counter()
    frame = synth(cfg).interactions
    print(f"generated {len(frame):,} ratings in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    rng = np.random.default_rng(seed)
    if test_rows is None:
        test = rng.random(len(frame)) < 0.02
    else:
        test = np.zeros(len(frame), dtype=bool)
        test[rng.choice(len(frame), size=test_rows, replace=False)] = True
    folder.mkdir(parents=True, exist_ok=True)
    if write_all:
        frame.to_parquet(folder / "all.parquet")
    frame[~test].reset_index(drop=True).to_parquet(folder / "train.parquet")
    frame[test].reset_index(drop=True).to_parquet(folder / "test.parquet")


def stages(folder: Path, model_name: str, text_ids: bool = False) -> dict:
    from recsys_core.data.files import read_table
    from recsys_core.evaluation.evaluate import evaluate
    from recsys_core.features.matrix import Interactions
    from recsys_core.models import create
    from recsys_core.models.base import Recommender

    params = {"factors": 64} if model_name == "sgd-mf" else {}
    st: dict[str, float] = {}
    t = time.perf_counter()
    # as recsys evaluate reads them: the ids as categoricals (codes from Parquet's dictionaries),
    # or, with --text-ids, as the text the earlier code read
    train = read_table(folder / "train.parquet", categorical_ids=not text_ids)
    test = read_table(folder / "test.parquet", categorical_ids=not text_ids)
    st["read"] = time.perf_counter() - t
    t = time.perf_counter()
    data = Interactions.from_frame(train)
    _ = data.matrix
    st["ids_and_matrix"] = time.perf_counter() - t
    t = time.perf_counter()
    model = create(model_name, params).fit(data)
    st["fit"] = time.perf_counter() - t
    inner = Recommender.recommend_idx
    spent = [0.0]

    def timed(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    Recommender.recommend_idx = timed  # type: ignore[method-assign]
    t = time.perf_counter()
    result = evaluate(model, train, test, k=10)
    st["evaluate"] = time.perf_counter() - t
    st["evaluate_recommend_idx"] = spent[0]
    return {
        "model": model_name,
        "stages_s": {k: round(v, 2) for k, v in st.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "ndcg_at_10": result.metrics.get("ndcg_at_10"),
        "ranked_users": result.counts.get("ranked_users"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, nargs="?")
    ap.add_argument("--model", default="sgd-mf")
    ap.add_argument("--generate", type=Path, default=None, help="write a train/test pair here")
    ap.add_argument("--users", type=int, default=8_000)
    ap.add_argument("--items", type=int, default=59_047)
    ap.add_argument("--ratings", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", default=None, help="a synthetic preset (25m) instead of the shape")
    ap.add_argument("--test-rows", type=int, default=None, help="this many random test rows")
    ap.add_argument("--all", action="store_true", help="also write all.parquet (every row)")
    ap.add_argument(
        "--text-ids", action="store_true", help="read the ids as text (the earlier code's way)"
    )
    args = ap.parse_args(argv)
    if args.generate:
        generate(
            args.generate,
            args.users,
            args.items,
            args.ratings,
            args.seed,
            size=args.size,
            test_rows=args.test_rows,
            write_all=args.all,
        )
        return 0
    if args.folder is None:
        ap.error("give the folder of train.parquet and test.parquet")
    print(json.dumps({**stages(args.folder, args.model, args.text_ids), "text_ids": args.text_ids}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
