"""Benchmark recsys models against their peers (Surprise, implicit) on the same splits.

    python benchmarks/run.py --data synthetic:100k --folds 1 --out results.md
    python benchmarks/run.py --data path/to/ml-100k/u.data
    python benchmarks/run.py --data synthetic:tiny --quick
    python benchmarks/run.py --data synthetic:100k --sgd-vs-surprise 7   # the SGD ratio alone

Rating metrics (RMSE, MAE) and ranking metrics (NDCG@10, P@10, seen items excluded) come from
recsys' own ``evaluate`` for every model: the peers are wrapped in a small adapter that hands
their predictions (or factors) to it. Each of our models is paired with its peer, and the table
shows the fit-time ratio ours / peer measured in the same run. A second table times the
speed goals (SGD MF on 1M ratings, ALS per iteration, item-item similarities on 1M ratings).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# implicit's OpenMP threads spin after each parallel region and starve numba's threads on a
# small machine unless they sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recsys_core.data import files, sources  # noqa: E402
from recsys_core.evaluation.evaluate import evaluate  # noqa: E402
from recsys_core.features.matrix import Interactions  # noqa: E402
from recsys_core.models import create  # noqa: E402
from recsys_core.models.base import Recommender  # noqa: E402
from recsys_core.models.training import Training  # noqa: E402

# our model -> (peer, our params for the comparison)
OURS = {
    "bias": ("surprise:BaselineOnly", {}),
    "sgd-mf": ("surprise:SVD", {}),
    "svdpp": ("surprise:SVDpp", {}),
    "item-knn": ("surprise:KNNBaseline", {}),
    "user-knn": (None, {}),
    "als": (None, {}),
    "bpmf": (None, {}),
    "content": (None, {}),
    "hybrid": (None, {}),
    "blend": (None, {}),
    "popularity": (None, {}),
    "ease": ("implicit:BM25", {}),
    "item-knn-implicit": ("implicit:BM25", {}),
    "implicit-als": ("implicit:ALS", {}),
    "implicit-bpr": ("implicit:BPR", {}),
}
QUICK = {
    "sgd-mf": {"epochs": 5, "factors": 20},
    "svdpp": {"epochs": 3},
    "bpmf": {"burn_in": 2, "samples": 3},
    "item-knn": {"k": 10},
    "item-knn-implicit": {"k": 10},
    "blend": {"members": [{"model": "bias"}, {"model": "als", "params": {"iterations": 2}}]},
    "hybrid": {"cf_params": {"epochs": 3, "factors": 10}},
    "implicit-bpr": {"iterations": 5},
}


# peers whose full ranking would need one Python call per (user, item): not ranked
UNRANKED = {"surprise:KNNBaseline", "surprise:SVDpp"}


class PeerAdapter(Recommender):
    """Wraps a peer library's model so that recsys' ``evaluate`` scores it."""

    name = "peer"

    def __init__(self, peer: str, params: dict | None = None) -> None:
        super().__init__()
        self.peer = peer
        self.params = dict(params or {})
        self.predicts_ratings = peer.startswith("surprise:")

    def get_params(self) -> dict:
        return {"peer": self.peer, **self.params}

    def _fit(self, data: Interactions, training: Training) -> None:
        lib, _, kind = self.peer.partition(":")
        if lib == "surprise":
            self._fit_surprise(data, kind)
        else:
            self._fit_implicit(data, kind)

    def _fit_surprise(self, data: Interactions, kind: str) -> None:
        import surprise

        lo, hi = self.rating_scale_
        frame = pd.DataFrame({"u": data.user_idx, "i": data.item_idx, "r": data.rating})
        ts = surprise.Dataset.load_from_df(
            frame, surprise.Reader(rating_scale=(float(lo), float(hi)))
        ).build_full_trainset()
        algos = {
            "SVD": lambda: surprise.SVD(random_state=0, **self.params),
            "SVDpp": lambda: surprise.SVDpp(random_state=0, **self.params),
            "BaselineOnly": lambda: surprise.BaselineOnly(verbose=False),
            "KNNBaseline": lambda: surprise.KNNBaseline(
                sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
            ),
        }
        self.algo = algos[kind]().fit(ts)
        self.ts = ts

    def _fit_implicit(self, data: Interactions, kind: str) -> None:
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.nearest_neighbours import BM25Recommender

        X = sp.csr_matrix(data.matrix, dtype=np.float32)
        X.data[:] = 1.0
        if kind == "ALS":
            self.algo = AlternatingLeastSquares(random_state=0, **self.params)
        elif kind == "BPR":
            self.algo = BayesianPersonalizedRanking(random_state=0, **self.params)
        else:
            self.algo = BM25Recommender(**self.params)
        self.algo.fit(X, show_progress=False)
        self.X = X

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        est = self.algo.estimate
        out = np.empty(u.size)
        to_u, to_i = self.ts.to_inner_uid, self.ts.to_inner_iid
        mu = self.ts.global_mean
        for n, (uu, ii) in enumerate(zip(u.tolist(), i.tolist(), strict=True)):
            try:
                r = est(to_u(uu), to_i(ii))
                out[n] = r[0] if isinstance(r, tuple) else r
            except Exception:  # unknown to the peer: its global mean, as Surprise does
                out[n] = mu
        return out

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        if self.peer.startswith("implicit:"):
            if hasattr(self.algo, "similarity"):
                return np.asarray((self.X[u] @ self.algo.similarity).todense(), np.float64)
            return np.asarray(self.algo.user_factors[u] @ self.algo.item_factors.T, np.float64)
        # Surprise: scores from its fitted parameters, in our index order
        inner_u = np.array([self.ts.to_inner_uid(x) for x in u.tolist()])
        items = np.array([self.ts.to_inner_iid(i) for i in range(self.n_items)])
        a = self.algo
        if hasattr(a, "qi"):
            s = a.bu[inner_u][:, None] + a.bi[items][None, :] + a.pu[inner_u] @ a.qi[items].T
            return s + self.ts.global_mean
        if hasattr(a, "bi") and not hasattr(a, "sim"):
            return np.broadcast_to(a.bi[items], (u.size, self.n_items)).astype(np.float64)
        return np.zeros((u.size, self.n_items))  # not ranked (see UNRANKED)


def load(data: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if data.startswith("synthetic") or data.startswith(("movielens-", "ml-")):
        col = sources.collect(data, seed=seed)
        return col.interactions, col.items
    return files.read_table(data), None


def folds(frame: pd.DataFrame, n: int, seed: int):
    rng = np.random.default_rng(seed)
    if n <= 1:
        test = rng.random(len(frame)) < 0.2
        yield frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True)
        return
    fold = rng.integers(0, n, len(frame))
    for f in range(n):
        yield frame[fold != f].reset_index(drop=True), frame[fold == f].reset_index(drop=True)


def score(model: Recommender, train_i: Interactions, train, test) -> dict:
    t = time.perf_counter()
    model.fit(train_i)
    fit_s = time.perf_counter() - t
    m = evaluate(model, train, test, k=10).metrics
    if getattr(model, "peer", None) in UNRANKED:
        m.pop("ndcg_at_10", None)
        m.pop("precision_at_10", None)
    return {
        "rmse": m.get("rmse"),
        "mae": m.get("mae"),
        "ndcg": m.get("ndcg_at_10"),
        "p": m.get("precision_at_10"),
        "fit_s": fit_s,
    }


def timing(train_i: Interactions, quick: bool, seed: int) -> list[tuple[str, str, str]]:
    """The speed goals: (what, measured, target)."""
    from implicit.cpu.als import AlternatingLeastSquares

    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.models.knn import similarity_topk

    rows = []
    its, factors = (2, 16) if quick else (5, 64)
    ours = create("als", {"factors": factors, "iterations": its})
    t = time.perf_counter()
    ours.fit(train_i)
    ours_it = (time.perf_counter() - t) / its
    X = train_i.matrix.copy()
    X.data[:] = 1.0
    peer = AlternatingLeastSquares(factors=factors, iterations=its, random_state=seed)
    t = time.perf_counter()
    peer.fit(X, show_progress=False)
    peer_it = (time.perf_counter() - t) / its
    rows.append(
        (
            f"als per iteration, {factors} factors (implicit ALS {peer_it:.3f} s)",
            f"{ours_it:.3f} s (x{ours_it / peer_it:.2f})",
            "within 1.5x of implicit",
        )
    )
    if quick:
        return rows
    big = generate(config_for("1m", seed=seed)).interactions
    big_i = Interactions.from_frame(big)
    create("sgd-mf", {"epochs": 1}).fit(big_i)  # compile outside the timing
    t = time.perf_counter()
    create("sgd-mf", {"factors": 100, "epochs": 20}).fit(big_i)
    rows.append(
        (
            "sgd-mf, 1M ratings, 100 factors, 20 epochs",
            f"{time.perf_counter() - t:.2f} s",
            "<= 2 s on 2 cores",
        )
    )
    t = time.perf_counter()
    similarity_topk(big_i.matrix, 200, 100.0)
    rows.append(
        (
            f"item-item similarity, {big_i.n_items} items x {len(big_i)} ratings",
            f"{time.perf_counter() - t:.2f} s",
            "<= 5 s",
        )
    )
    return rows


def sgd_vs_surprise(train_i: Interactions, repeats: int) -> list[str]:
    """sgd-mf against Surprise's SVD at SVD's parameters (k=100, 20 epochs, lr 0.005, reg 0.02),
    each fit after a first one in the same process (compiled, warm), alternating, ``repeats``
    times: the medians of the wall time and of the fitting thread's CPU time (which time slices
    lost to other processes on a shared machine do not inflate), and their ratios."""
    import surprise

    frame = pd.DataFrame({"u": train_i.user_idx, "i": train_i.item_idx, "r": train_i.rating})
    lo, hi = float(train_i.rating.min()), float(train_i.rating.max())
    ts = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(lo, hi)))
    trainset = ts.build_full_trainset()
    fits = {
        "sgd-mf": lambda: create("sgd-mf", {}).fit(train_i),
        "surprise:SVD": lambda: surprise.SVD(random_state=0).fit(trainset),
    }
    wall: dict[str, list[float]] = {k: [] for k in fits}
    cpu: dict[str, list[float]] = {k: [] for k in fits}
    for fit in fits.values():
        fit()
    for _ in range(repeats):
        for name, fit in fits.items():
            t, c = time.perf_counter(), time.thread_time()
            fit()
            cpu[name].append(time.thread_time() - c)
            wall[name].append(time.perf_counter() - t)
    med = {k: (float(np.median(wall[k])), float(np.median(cpu[k]))) for k in fits}
    (ow, oc), (pw, pc) = med["sgd-mf"], med["surprise:SVD"]
    return [
        f"sgd-mf vs Surprise SVD, {len(train_i):,} ratings, k=100, 20 epochs, warm, median of "
        f"{repeats}: sgd-mf {ow:.3f} s wall / {oc:.3f} s CPU, Surprise {pw:.3f} s wall / "
        f"{pc:.3f} s CPU: Surprise/sgd-mf {pw / ow:.2f}x wall, {pc / oc:.2f}x CPU "
        "(target >= 4x)"
    ]


def fmt(x, digits=4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default="synthetic:100k",
        help="synthetic:100k | synthetic:1m | path to u.data / ratings.dat / .csv",
    )
    ap.add_argument("--folds", type=int, default=1, help="1: seeded 80/20; N: N folds")
    ap.add_argument("--models", nargs="*", default=list(OURS), help="our models to run")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="also write the tables to this Markdown file")
    ap.add_argument("--quick", action="store_true", help="few epochs, no 1M timings (smoke)")
    ap.add_argument("--no-peers", action="store_true", help="skip Surprise and implicit")
    ap.add_argument(
        "--sgd-vs-surprise",
        type=int,
        default=0,
        metavar="N",
        help="only time sgd-mf against Surprise SVD, N alternating warm fits each",
    )
    args = ap.parse_args(argv)

    frame, items = load(args.data, args.seed)
    if args.sgd_vs_surprise:
        train, _ = next(folds(frame, 1, args.seed))
        text = "\n".join(sgd_vs_surprise(Interactions.from_frame(train), args.sgd_vs_surprise))
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
        return 0
    results: dict[str, list[dict]] = {}
    for train, test in folds(frame, args.folds, args.seed):
        done: set[str] = set()
        train_i = Interactions.from_frame(train, item_meta=items)
        warm = Interactions.from_frame(train.head(3000), item_meta=items)
        for name in args.models:
            if name in ("content", "hybrid") and items is None:
                continue
            params = {**OURS[name][1], **(QUICK.get(name, {}) if args.quick else {})}
            if name not in ("content", "hybrid") or items is not None:
                try:  # compile the numba kernels outside the timing
                    create(name, {**params, **QUICK.get(name, {})}).fit(warm)
                except Exception:
                    pass
            results.setdefault(name, []).append(score(create(name, params), train_i, train, test))
            peer = OURS[name][0]
            if peer and not args.no_peers and peer not in done:
                done.add(peer)
                peer_params = {}
                if args.quick and peer == "surprise:SVD":
                    peer_params = {"n_epochs": 5, "n_factors": 20}
                if args.quick and peer == "surprise:SVDpp":
                    peer_params = {"n_epochs": 3}
                if args.quick and peer == "implicit:BPR":
                    peer_params = {"iterations": 5}
                results.setdefault(peer, []).append(
                    score(PeerAdapter(peer, peer_params), train_i, train, test)
                )
    mean = {
        n: {
            k: (None if any(r[k] is None for r in rs) else float(np.mean([r[k] for r in rs])))
            for k in rs[0]
        }
        for n, rs in results.items()
    }
    lines = [
        f"data: {args.data}, {len(frame)} ratings, folds: {args.folds}, seed {args.seed}"
        f"{', quick' if args.quick else ''}",
        "",
        "| model | RMSE | MAE | NDCG@10 | P@10 | fit s | fit ours/peer |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in mean.items():
        peer = OURS.get(name, (None,))[0]
        ratio = "-"
        if peer in mean and mean[peer]["fit_s"]:
            ratio = f"{m['fit_s'] / mean[peer]['fit_s']:.2f} (vs {peer})"
        lines.append(
            f"| {name} | {fmt(m['rmse'])} | {fmt(m['mae'])} | {fmt(m['ndcg'])} | "
            f"{fmt(m['p'])} | {fmt(m['fit_s'], 2)} | {ratio} |"
        )
    if not args.no_peers:
        train, _ = next(folds(frame, args.folds, args.seed))
        lines += ["", "| timing | measured | target |", "|---|---|---|"]
        for what, got, target in timing(Interactions.from_frame(train), args.quick, args.seed):
            lines.append(f"| {what} | {got} | {target} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
