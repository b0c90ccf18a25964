"""Serving speed: in-process top-k, HTTP under load (with the alias moving), batch scoring.

    python benchmarks/serving.py --what inprocess,batch          # seconds
    python benchmarks/serving.py --what http --duration 30       # needs `wrk` (apt install wrk)
    python benchmarks/serving.py --what http --think-ms 9        # paced: ~1,500 requests/s
    python benchmarks/serving.py --what asgi                     # CPU per request, no socket
    python benchmarks/serving.py --what asgi --family ease       # the same for an item-item model
    python benchmarks/serving.py --what asgi,http --auth both    # the cost of API keys
    python benchmarks/serving.py --what http --auth both --family ease --rounds 5 --duration 15
    python benchmarks/serving.py --what batch-25m                # minutes, ~3 GB
    python benchmarks/serving.py --what http --family ease       # the default ranking champion
    python benchmarks/serving.py --what http --family item-knn-implicit
    python benchmarks/serving.py --out benchmarks/results-serving.md

The models have MovieLens shapes with random parameters (scoring time does not depend on the
values): ML-1M 6,040 users x 3,706 items with 1.0M interactions, ML-25M 162,541 x 59,047 with
25M. The item-item families (``ease``, ``item-knn-implicit``) are fitted for real on the
ML-1M-shaped interactions, so that their weights have the layout a fit gives them. Each timing
is printed beside a peer measured in the same run: the online ``Scorer`` against the model's
own offline ``recommend`` for one user.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recsys_core.features.ids import IdVocab  # noqa: E402
from recsys_core.features.matrix import Interactions  # noqa: E402
from recsys_core.models import create  # noqa: E402
from recsys_core.models.base import Recommender  # noqa: E402
from recsys_core.models.ease import EASE  # noqa: E402
from recsys_core.models.sgd_mf import SGDMF  # noqa: E402
from recsys_core.serving import Scorer  # noqa: E402
from recsys_core.serving.batch import recommend_all  # noqa: E402

ML1M = (6_040, 3_706, 1_000_209)
ML25M = (162_541, 59_047, 25_000_095)
FACTORS = 64


# ---------------------------------------------------------------------- shaped models
def _interactions(n_users: int, n_items: int, nnz: int, rng) -> sp.csr_matrix:
    """Users x items with MovieLens-like skew: long-tailed user activity and item popularity."""
    counts = rng.lognormal(0.0, 1.0, n_users)
    counts = np.maximum(20, np.round(counts / counts.sum() * nnz)).astype(np.int64)
    pop = rng.lognormal(0.0, 1.5, n_items)
    pop /= pop.sum()
    indices = rng.choice(n_items, size=int(counts.sum()), p=pop).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    data = rng.integers(1, 6, size=indices.size).astype(np.float32)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_users, n_items))
    X.sum_duplicates()
    return X


def _base(model: Recommender, X: sp.csr_matrix) -> Recommender:
    n_users, n_items = X.shape
    model.user_vocab_ = IdVocab(np.arange(1, n_users + 1).astype(str))
    model.item_vocab_ = IdVocab(np.arange(1, n_items + 1).astype(str))
    model.seen_ = X
    model.item_popularity_ = np.bincount(X.indices, minlength=n_items).astype(np.float32)
    model.global_mean_ = 3.5
    model.rating_scale_ = np.array([1.0, 5.0])
    model.history_ = []
    return model


def factor_model(shape=ML1M, factors=FACTORS, seed=0) -> SGDMF:
    rng = np.random.default_rng(seed)
    n_users, n_items, nnz = shape
    m = _base(SGDMF(factors=factors), _interactions(n_users, n_items, nnz, rng))
    m.mu_ = np.float64(3.5)
    m.user_bias_ = rng.normal(0, 0.1, n_users).astype(np.float32)
    m.item_bias_ = rng.normal(0, 0.1, n_items).astype(np.float32)
    m.user_factors_ = rng.normal(0, 0.1, (n_users, factors)).astype(np.float32)
    m.item_factors_ = rng.normal(0, 0.1, (n_items, factors)).astype(np.float32)
    return m


def ease_model(shape=ML1M, seed=0) -> EASE:
    rng = np.random.default_rng(seed)
    n_users, n_items, nnz = shape
    X = _interactions(n_users, n_items, nnz, rng)
    m = _base(EASE(), X)
    m.weights_ = rng.normal(0, 0.01, (n_items, n_items)).astype(np.float32)
    np.fill_diagonal(m.weights_, 0.0)
    binary = X.copy()
    binary.data[:] = 1.0
    m.user_items_ = binary
    return m


FAMILIES = ("factors", "ease", "item-knn-implicit")
"""What ``--family`` serves: a factor model (sgd-mf shape) or a fitted item-item model (what
``make run`` promotes for lists is ``ease``)."""


def fitted_model(family: str, shape=ML1M, seed=0) -> Recommender:
    """``family`` fitted on ML-shaped interactions (``factors``: random factors, no fit)."""
    if family == "factors":
        return factor_model(shape, seed=seed)
    rng = np.random.default_rng(seed)
    n_users, n_items, nnz = shape
    X = _interactions(n_users, n_items, nnz, rng).tocoo()
    data = Interactions(
        users=IdVocab(np.arange(1, n_users + 1).astype(str)),
        items=IdVocab(np.arange(1, n_items + 1).astype(str)),
        user_idx=X.row.astype(np.int64),
        item_idx=X.col.astype(np.int64),
        rating=X.data.astype(np.float32),
        timestamp=np.zeros(X.nnz, np.int64),
    )
    return create(family, {}).fit(data)


# ---------------------------------------------------------------------- in process
def _latencies(fn, args, warmup=100, clock=time.perf_counter) -> np.ndarray:
    """Seconds per call; ``clock=time.thread_time`` counts only this thread's CPU time, which
    time slices lost to other processes on a shared machine do not inflate."""
    for a in args[:warmup]:
        fn(a)
    out = np.empty(len(args))
    for n, a in enumerate(args):
        t = clock()
        fn(a)
        out[n] = clock() - t
    return out


def _ms(lat: np.ndarray, q: float) -> float:
    return float(np.percentile(lat, q) * 1e3)


def bench_inprocess(calls: int = 3000) -> list[dict]:
    rows = []
    rng = np.random.default_rng(1)
    for name, model, target in (
        ("factors (sgd-mf shape)", factor_model(), 1.0),
        ("ease (random weights)", ease_model(), 2.0),
        ("ease (fitted)", fitted_model("ease"), 2.0),
        ("item-knn-implicit (fitted)", fitted_model("item-knn-implicit"), 2.0),
    ):
        scorer = Scorer(model)
        users = rng.integers(1, ML1M[0] + 1, calls).astype(str)
        online = _latencies(lambda u, s=scorer: s.recommend(u, 10), list(users))
        cpu = _latencies(
            lambda u, s=scorer: s.recommend(u, 10), list(users), clock=time.thread_time
        )
        offline = _latencies(lambda u, m=model: m.recommend([u], 10), list(users[:500]))
        recent = [list(rng.integers(1, ML1M[1] + 1, 10).astype(str)) for _ in range(calls)]
        fold = _latencies(lambda r, s=scorer: s.recommend(None, 10, recent_items=r), recent)
        rows.append(
            {
                "model": name,
                "p50_ms": _ms(online, 50),
                "p99_ms": _ms(online, 99),
                "cpu_p99_ms": _ms(cpu, 99),
                "target_p99_ms": target,
                "offline_p99_ms": _ms(offline, 99),
                "fold_in_p99_ms": _ms(fold, 99),
            }
        )
    return rows


# ---------------------------------------------------------------------- the app, no socket
def _asgi_get(app, path: str, query: bytes, key: str | None = None) -> tuple[int, bytes]:
    """One GET through the ASGI app (what uvicorn calls), without a client or a socket."""
    import asyncio

    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"bench")]
        + ([(b"authorization", f"Bearer {key}".encode())] if key else []),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.get_event_loop().run_until_complete(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def bench_asgi(calls: int = 3000, auth: bool = True, family: str = "factors") -> list[dict]:
    """CPU time per GET /recommendations/{user}?k=10 of the whole service process (routing,
    scoring, the JSON answer, metrics, and the recording of the served list in its thread),
    measured in process: on a loaded machine the CPU time, not the wall time, is comparable.
    ``auth``: each request carries an API key the service checks (else ``--no-auth``).
    ``family``: the model serving the lists (:data:`FAMILIES`; a factor model keeps the
    rating role beside an item-item one)."""
    import asyncio

    from recsys_core.events import EventStore
    from recsys_core.tracking import mlflow_run, registry
    from recsys_core.tracking.model_store import STATE_PATH
    from recsys_service.app import create_app
    from recsys_service.settings import ServiceSettings

    tmp = Path(tempfile.mkdtemp(prefix="recsys-bench-asgi-"))
    old = os.getcwd()
    os.chdir(tmp)
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        mlflow_run.configure(f"sqlite:///{tmp / 'mlflow.db'}")
        import mlflow

        run_id = mlflow_run.start_run("bench", "asgi")
        lists = fitted_model(family)
        mlflow_run.log_artifacts(run_id, lists.save(tmp / "state"), STATE_PATH)
        registry.register("bench", f"runs:/{run_id}/{STATE_PATH}", run_id, {})
        for alias in registry.ROLE_ALIASES.values():
            mlflow.MlflowClient().set_registered_model_alias("bench", alias, "1")
        if family != "factors":
            run_id = mlflow_run.start_run("bench", "rating")
            mlflow_run.log_artifacts(run_id, factor_model().save(tmp / "rating"), STATE_PATH)
            registry.register("bench", f"runs:/{run_id}/{STATE_PATH}", run_id, {})
            mlflow.MlflowClient().set_registered_model_alias(
                "bench", registry.ROLE_ALIASES["rating"], "2"
            )
        events = EventStore(f"sqlite:///{tmp / 'events.db'}")
        events.upgrade()
        app = create_app(
            ServiceSettings(registered_model="bench", auth=auth), poll=False, events=events
        )
        key = app.state.auth.store.create("bench", "recommend,admin") if auth else None
        app.state.live.refresh()
        rng = np.random.default_rng(2)
        users = rng.integers(1, ML1M[0] + 1, calls + 200).astype(str)
        for u in users[:200]:
            assert _asgi_get(app, f"/recommendations/{u}", b"k=10", key)[0] == 200
        app.state.recorder.flush(60)
        c0, t0 = time.process_time(), time.perf_counter()
        for u in users[200:]:
            _asgi_get(app, f"/recommendations/{u}", b"k=10", key)
        loop_s = time.perf_counter() - t0
        app.state.recorder.flush(120)  # the served lists written: part of the cost
        cpu = time.process_time() - c0
        text = _asgi_get(app, "/metrics", b"", key)[1].decode()
        recorded = re.search(r'recsys_served_lists_total\{outcome="recorded"\} (\S+)', text)
        app.state.recorder.stop()
        events.close()
        return [
            {
                "route": "GET /recommendations/{user}?k=10",
                "family": family,
                "auth": _auth_label(auth),
                "calls": calls,
                "cpu_ms_per_request": 1e3 * cpu / calls,
                "wall_ms_per_request": 1e3 * loop_s / calls,
                "lists_recorded": int(float(recorded.group(1))) if recorded else 0,
            }
        ]
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- over HTTP
_LUA = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/recommendations/" .. math.random(1, %d) .. "?k=10")
end
"""
# a pause of each connection before its next request (wrk's ``delay`` hook): 16 connections
# with a 9 ms pause offer ~1,500-1,600 requests/s instead of as many as the service can take
_DELAY = """
delay = function()
  return %d
end
"""


def _parse_wrk(text: str) -> dict:
    def num(pattern, default=0.0):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    def ms(pattern):
        m = re.search(pattern, text)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = (
        sum(
            int(x)
            for x in re.findall(
                r"(?:connect|read|write|timeout) (\d+)", text.split("Socket errors:")[-1]
            )
        )
        if "Socket errors:" in text
        else 0
    )
    return {
        "req_per_s": num(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": ms(r"50%\s+([\d.]+)(us|ms|s)"),
        "p99_ms": ms(r"99%\s+([\d.]+)(us|ms|s)"),
        "requests": int(num(r"(\d+) requests in")),
        "non_2xx": int(num(r"Non-2xx or 3xx responses:\s+(\d+)")),
        "socket_errors": errors,
    }


def _per_worker(metrics_dir: Path) -> dict[str, int]:
    """GET /recommendations answered so far by each worker process (pid: count), read from
    the workers' own files in the shared Prometheus folder."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        pid = path.stem.removeprefix("counter_")
        counts[pid] = int(
            sum(
                sample.value
                for metric in MultiProcessCollector.merge([str(path)])
                for sample in metric.samples
                if sample.name == "recsys_requests_total"
                and sample.labels.get("route") == "/recommendations/{user_id}"
            )
        )
    return counts


def _split(before: dict[str, int], after: dict[str, int]) -> str:
    """The requests of one run, worker by worker (``a/b``)."""
    return "/".join(f"{after[pid] - before.get(pid, 0):,}" for pid in sorted(after))


def _auth_label(auth: bool) -> str:
    return "API key" if auth else "--no-auth"


class _Registry:
    """A fresh folder with an MLflow registry holding three fitted versions of ``family`` for
    the lists (the ranking alias on the first) and a factor model for the ratings; the models
    are fitted once, whatever the number of servers started on it."""

    def __init__(self, family: str) -> None:
        import mlflow

        from recsys_core.tracking import mlflow_run, registry
        from recsys_core.tracking.model_store import STATE_PATH

        self.tmp = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
        self.uri = f"sqlite:///{self.tmp / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = self.uri
        self._old = os.getcwd()
        os.chdir(self.tmp)
        mlflow_run.configure(self.uri)
        self.refs = []
        for seed in range(3):
            model = fitted_model(family, seed=seed)
            run_id = mlflow_run.start_run("bench", f"v{seed}")
            mlflow_run.log_artifacts(run_id, model.save(self.tmp / f"state{seed}"), STATE_PATH)
            self.refs.append(registry.register("bench", f"runs:/{run_id}/{STATE_PATH}", run_id, {}))
        self.client = mlflow.MlflowClient()
        # the list role moves between the three versions; the rating role stays on a factor
        # model (the same one when the lists come from a factor model too)
        self.moving = (
            [registry.ROLE_ALIASES["ranking"]]
            if family != "factors"
            else list(registry.ROLE_ALIASES.values())
        )
        if family != "factors":
            run_id = mlflow_run.start_run("bench", "rating")
            mlflow_run.log_artifacts(run_id, factor_model().save(self.tmp / "rating"), STATE_PATH)
            rating = registry.register("bench", f"runs:/{run_id}/{STATE_PATH}", run_id, {})
            self.client.set_registered_model_alias(
                "bench", registry.ROLE_ALIASES["rating"], rating.version
            )
        self.move_to(0)

    def move_to(self, n: int) -> None:
        for alias in self.moving:
            self.client.set_registered_model_alias("bench", alias, self.refs[n].version)

    def close(self) -> None:
        os.chdir(self._old)
        shutil.rmtree(self.tmp, ignore_errors=True)


class _Server:
    """``recsys serve --workers N`` on ``port`` in the registry's folder, with an API key
    checked (``auth``) or ``--no-auth``; ready once every worker has loaded the model."""

    def __init__(
        self,
        reg: _Registry,
        port: int,
        workers: int,
        auth: bool,
        poll_s: float,
        threads: int,
        connections: int,
        think_ms: int,
    ) -> None:
        self.auth, self.workers = auth, workers
        self.threads, self.connections = threads, connections
        self.url = f"http://127.0.0.1:{port}"
        # a folder of its own: its event store (served lists, keys) and outbox are its own
        self.cwd = reg.tmp / f"serve-{port}"
        self.metrics_dir = self.cwd / "metrics"  # the workers' counters
        self.metrics_dir.mkdir(parents=True)
        env = {
            **os.environ,
            "RECSYS_SERVE_REGISTERED_MODEL": "bench",
            "RECSYS_SERVE_POLL_INTERVAL_S": str(poll_s),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
        }
        self.headers: dict[str, str] = {}
        if auth:
            from recsys_core.events.keys import KeyStore
            from recsys_core.events.migrate import upgrade

            events_url = f"sqlite:///{self.cwd / '.recsys' / 'events.db'}"  # the default
            upgrade(events_url)
            keys = KeyStore(events_url)
            secret = keys.create(f"bench-{port}", "recommend,admin")
            self.headers["Authorization"] = f"Bearer {secret}"
            keys.close()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recsys_cli.main",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *([] if auth else ["--no-auth"]),
            ],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.script = self.cwd / "users.lua"
        self.script.write_text(_LUA % ML1M[0] + (_DELAY % think_ms if think_ms else ""))
        deadline = time.monotonic() + 300
        while True:
            try:
                # one worker ready is not enough: wrk's connections would all go to it
                if self.get("/ready")["ready"] and self.loaded_workers() >= workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"the service did not become ready with {workers} workers")
            time.sleep(0.5)

    def get(self, path: str, raw: bool = False):
        import urllib.request

        request = urllib.request.Request(self.url + path, headers=self.headers)
        with urllib.request.urlopen(request, timeout=5) as r:
            body = r.read()
            return body.decode() if raw else json.loads(body)

    def loaded_workers(self) -> int:  # one recsys_model_version series per worker that loaded
        text = self.get("/metrics", raw=True)
        return len(re.findall(r'^recsys_model_version\{.*role="ranking".*\} \d', text, re.M))

    def cpu_s(self) -> float:
        """CPU seconds (user + system) of the service so far: the supervisor and its workers."""
        import psutil

        total = 0.0
        root = psutil.Process(self.proc.pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
        return total

    def wrk(self, seconds: int, run: str) -> dict:
        """One wrk run: its figures, the requests each worker answered, and the CPU time per
        request of the service and of wrk itself (comparable on a loaded machine)."""
        cmd = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(self.script),
            *(f"-H{k}: {v}" for k, v in self.headers.items()),
            self.url,
        ]
        before, cpu0 = _per_worker(self.metrics_dir), self.cpu_s()
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1, after = self.cpu_s(), _per_worker(self.metrics_dir)
        row = {"run": run, "auth": _auth_label(self.auth), **_parse_wrk(out)}
        n = max(row["requests"], 1)
        wrk_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
        row["server_cpu_ms"] = 1e3 * (cpu1 - cpu0) / n
        row["wrk_cpu_ms"] = 1e3 * wrk_cpu / n
        row["per_worker"] = _split(before, after)
        return row

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:  # a loaded machine: its workers slow to stop
            self.proc.kill()
            self.proc.wait(30)


def _need_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")


def bench_http(
    duration: int,
    connections: int,
    workers: int,
    warmup: int = 5,
    threads: int = 2,
    think_ms: int = 0,
    poll_s: float = 1.0,
    family: str = "factors",
    auth: bool = True,
    move_alias: bool = True,
) -> list[dict]:
    """wrk against ``recsys serve --workers N``, timed only once every worker has loaded the
    model and a ``warmup``-second wrk run has gone through (first requests, lazy imports);
    each row says how many requests each worker answered. ``family`` is the model served for
    lists (:data:`FAMILIES`; a factor model serves ratings beside an item-item one).
    ``think_ms`` > 0: each connection pauses that long before its next request (a paced load
    rather than a saturating one). ``auth``: every request carries an API key the service
    checks; else ``--no-auth``."""
    _need_wrk()
    reg = _Registry(family)
    server = None
    try:
        server = _Server(reg, 8765, workers, auth, poll_s, threads, connections, think_ms)
        rows = []
        if warmup:
            rows.append(server.wrk(warmup, f"warm-up ({warmup} s, not a result)"))
        rows.append(server.wrk(duration, "steady"))
        if not move_alias:
            return rows

        def move_twice():
            for n in (1, 2):
                time.sleep(duration / 3)
                reg.move_to(n)

        mover = threading.Thread(target=move_twice)
        mover.start()
        row = server.wrk(duration, "alias moved twice")
        mover.join()
        time.sleep(2)
        served = server.get("/model")["ranking"]["version"]
        rows.append({**row, "final_version": f"{served} (expected {reg.refs[-1].version})"})
        return rows
    finally:
        if server is not None:
            server.stop()
        reg.close()


def bench_http_auth(
    duration: int,
    connections: int,
    workers: int,
    warmup: int = 5,
    threads: int = 2,
    think_ms: int = 0,
    poll_s: float = 1.0,
    family: str = "factors",
    rounds: int = 3,
) -> list[dict]:
    """The cost of API keys over HTTP: two services on the same registry, one with
    ``--no-auth`` and one checking a key, both started (and warmed up) before any timing;
    then ``rounds`` rounds of one wrk run against each, interleaved and alternating which goes
    first (off on, on off, off on, ...), so that a load that drifts weighs on both alike.
    The last rows: the median of each mode's runs and the ratio key / no key."""
    _need_wrk()
    reg = _Registry(family)
    servers: dict[bool, _Server] = {}
    try:
        for n, auth in enumerate((False, True)):
            servers[auth] = _Server(
                reg, 8765 + n, workers, auth, poll_s, threads, connections, think_ms
            )
        rows = []
        if warmup:
            for auth in (False, True):
                rows.append(servers[auth].wrk(warmup, f"warm-up ({warmup} s, not a result)"))
        for r in range(rounds):
            for auth in (False, True) if r % 2 == 0 else (True, False):
                rows.append(servers[auth].wrk(duration, f"round {r + 1}"))
        return rows + auth_summary(rows)
    finally:
        for server in servers.values():
            server.stop()
        reg.close()


_COMPARED = ("req_per_s", "p50_ms", "p99_ms", "server_cpu_ms", "wrk_cpu_ms")


def auth_summary(rows: list[dict]) -> list[dict]:
    """The median of each mode's timed runs (warm-ups left out) and the ratio with / without."""
    median = {}
    for auth in (False, True):
        runs = [r for r in rows if r["auth"] == _auth_label(auth) and r["run"].startswith("round")]
        median[auth] = {m: float(np.median([r[m] for r in runs])) for m in _COMPARED}
        median[auth]["requests"] = sum(r["requests"] for r in runs)
        median[auth]["non_2xx"] = sum(r["non_2xx"] for r in runs)
        median[auth]["socket_errors"] = sum(r["socket_errors"] for r in runs)
    n = sum(1 for r in rows if r["run"].startswith("round")) // 2
    return [
        {"run": f"median of {n}", "auth": _auth_label(False), **median[False]},
        {"run": f"median of {n}", "auth": _auth_label(True), **median[True]},
        {
            "run": "API key / --no-auth",
            **{m: median[True][m] / max(median[False][m], 1e-9) for m in _COMPARED},
        },
    ]


# ---------------------------------------------------------------------- batch
def bench_batch(shape=ML1M, max_users: int | None = None) -> dict:
    t0 = time.perf_counter()
    model = factor_model(shape)
    build = time.perf_counter() - t0
    users = None
    if max_users is not None and max_users < shape[0]:
        users = np.arange(1, max_users + 1).astype(str)
    tmp = Path(tempfile.mkdtemp(prefix="recsys-batch-bench-"))
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        result = recommend_all(model, tmp, model_version="1", users=users, k=10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    return {
        "shape": f"{shape[0]:,} x {shape[1]:,}",
        "users": result.users,
        "rows": result.rows,
        "seconds": result.seconds,
        "cpu_s": cpu,
        "build_s": build,
        "peak_gib": peak,
        "users_per_s": result.users / result.seconds,
    }


def _batch_subprocess(shape_name: str, max_users: int | None) -> dict:
    """Run one batch in a fresh process, so that its peak memory is its own."""
    cmd = [sys.executable, __file__, "--what", f"_batch-{shape_name}", "--json"]
    if max_users:
        cmd += ["--max-users", str(max_users)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------- report
def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:,.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="inprocess,batch,http")
    ap.add_argument("--duration", type=int, default=30, help="seconds of each HTTP run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="service worker processes")
    ap.add_argument(
        "--warmup", type=int, default=5, help="seconds of wrk before the timed HTTP runs (0: none)"
    )
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument(
        "--think-ms",
        type=int,
        default=0,
        help="HTTP: each connection pauses this long before its next request "
        "(0: as fast as the service answers)",
    )
    ap.add_argument(
        "--poll-s",
        type=float,
        default=1.0,
        help="HTTP: the service's alias poll interval (its default is 30 s; 1 s lets "
        "the alias-moving run see each move within a second)",
    )
    ap.add_argument(
        "--family",
        default="factors",
        choices=FAMILIES,
        help="HTTP: the model family served for lists",
    )
    ap.add_argument("--calls", type=int, default=3000, help="in-process calls per model")
    ap.add_argument(
        "--auth",
        choices=("on", "off", "both"),
        default="on",
        help="asgi, http: requests with an API key the service checks (on), with "
        "`--no-auth` (off), or both in this run, compared",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="http with --auth both: timed runs of each mode, interleaved (off on, on off, ...)",
    )
    ap.add_argument("--max-users", type=int, default=None, help="batch: score only this many")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = ap.parse_args(argv)
    what = args.what.split(",")
    if what[0].startswith("_batch-"):  # the child of _batch_subprocess
        shape = {"1m": ML1M, "25m": ML25M}[what[0].removeprefix("_batch-")]
        print(json.dumps(bench_batch(shape, args.max_users)))
        return 0
    parts = [
        f"# Serving benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start)",
        "",
    ]
    if "inprocess" in what:
        rows = bench_inprocess(args.calls)
        parts += [
            "## In process: top-10 for one user (ML-1M shape, 64 factors)",
            "",
            _table(
                rows,
                [
                    "model",
                    "p50_ms",
                    "p99_ms",
                    "cpu_p99_ms",
                    "target_p99_ms",
                    "offline_p99_ms",
                    "fold_in_p99_ms",
                ],
            ),
            "",
            "p50/p99: wall time; cpu_p99: the thread's CPU time per call (time slices "
            "lost to other processes excluded); offline: the model's own "
            "`recommend([user], 10)` (pandas frame out); fold_in: a new user with 10 "
            "recent items.",
            "",
        ]
    if "batch" in what or "batch-25m" in what:
        rows = []
        if "batch" in what:
            rows.append({**_batch_subprocess("1m", None), "target": "<= 2 s"})
        if "batch-25m" in what:
            rows.append(
                {**_batch_subprocess("25m", args.max_users), "target": "<= 180 s, <= 4 GiB"}
            )
        parts += [
            "## Batch: top-10 of every user to Parquet (64 factors)",
            "",
            _table(
                rows,
                ["shape", "users", "rows", "seconds", "cpu_s", "users_per_s", "peak_gib", "target"],
            ),
            "",
            "cpu_s: CPU time of the process (all threads) while scoring; on a shared "
            "machine the wall time is longer.",
            "",
        ]
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.auth]
    if "asgi" in what:
        order = [False, True, True, False] if args.auth == "both" else modes  # ABBA
        rows = [row for auth in order for row in bench_asgi(args.calls, auth, args.family)]
        if args.auth == "both":
            cpu = {
                auth: float(
                    np.mean(
                        [r["cpu_ms_per_request"] for r in rows if r["auth"] == _auth_label(auth)]
                    )
                )
                for auth in (False, True)
            }
            rows.append(
                {
                    "route": "API key / --no-auth (means)",
                    "cpu_ms_per_request": cpu[True] / cpu[False],
                }
            )
        parts += [
            "## In process through the app: CPU per request (ML-1M factor model)",
            "",
            _table(
                rows,
                [
                    "route",
                    "auth",
                    "calls",
                    "cpu_ms_per_request",
                    "wall_ms_per_request",
                    "lists_recorded",
                ],
            ),
            "",
            "CPU time of the whole process (every thread) per request, the served "
            "lists written to a SQLite event store included; no socket, no client.",
            "",
        ]
    if "http" in what:
        common = (
            args.duration,
            args.connections,
            args.workers,
            args.warmup,
            args.threads,
            args.think_ms,
            args.poll_s,
            args.family,
        )
        if args.auth == "both":
            # one service of each kind, started once; timed runs interleaved (see bench_http_auth)
            rows = bench_http_auth(*common, rounds=args.rounds)
        else:
            rows = bench_http(*common, args.auth == "on")
        paced = f", each connection pausing {args.think_ms} ms" if args.think_ms else ""
        parts += [
            f"## Over HTTP: GET /recommendations/{{user}}?k=10, wrk -t{args.threads} "
            f"-c{args.connections} -d{args.duration}s{paced}, `recsys serve --workers "
            f"{args.workers}` (ML-1M shape, {args.family})",
            "",
            _table(
                rows,
                [
                    "run",
                    "auth",
                    "requests",
                    "req_per_s",
                    "p50_ms",
                    "p99_ms",
                    "non_2xx",
                    "socket_errors",
                    "server_cpu_ms",
                    "wrk_cpu_ms",
                    "per_worker",
                    "final_version",
                ],
            ),
            "",
            "Targets: >= 1,500 req/s, p99 <= 25 ms, 0 errors (also while the alias "
            "moves twice). per_worker: the requests each worker answered (wrk keeps "
            "its connections open: a worker holds those it accepted for the whole "
            "run). server_cpu_ms, wrk_cpu_ms: CPU time per request of the service's "
            "processes and of wrk (on a loaded machine the comparable figures).",
            "",
        ]
        if args.auth == "both":
            ratio = rows[-1]
            parts += [
                f"**API key / --no-auth over HTTP ({args.rounds} interleaved rounds, medians): "
                f"throughput {ratio['req_per_s']:.3f} (cost {1 - ratio['req_per_s']:.1%}), "
                f"p99 {ratio['p99_ms']:.3f}, service CPU per request "
                f"{ratio['server_cpu_ms']:.3f}**",
                "",
            ]
    text = "\n".join(parts)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
