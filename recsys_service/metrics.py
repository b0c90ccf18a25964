"""Prometheus metrics of the service: requests by route and status, latency, model, reloads,
and what the served model did not know (fallback answers, unknown users and items).

The shares that show drift between two training runs, in PromQL (5-minute windows)::

    # answers that fell back (popularity for unknown users, baselines for cold ids, ...)
    sum(rate(recsys_answers_total{fallback!="none"}[5m])) / sum(rate(recsys_answers_total[5m]))
    # user ids the served model has never seen
    sum(rate(recsys_user_lookups_total{known="false"}[5m]))
      / sum(rate(recsys_user_lookups_total[5m]))
    # item ids in recent_items the served model has never seen
    sum(rate(recsys_item_lookups_total{field="recent_items",known="false"}[5m]))
      / sum(rate(recsys_item_lookups_total{field="recent_items"}[5m]))

With several worker processes (``recsys serve --workers N``), ``PROMETHEUS_MULTIPROC_DIR``
names a folder shared by the workers (``recsys serve`` makes a fresh one): each process writes
its samples there and ``/metrics`` adds up every process's (prometheus_client's multiprocess
mode), so one scrape, whichever worker answers it, counts every request. There,
``recsys_model_version`` has one series per live worker (``pid`` label) and
``recsys_model_info`` is 1 for a version while any live worker serves it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """The service's collectors, in a registry of their own (one per app)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR) or None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recsys_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "recsys_model_version",
            "registered version serving a role",
            ["role"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_info = Gauge(
            "recsys_model_info",
            "1 for the version and algorithm serving a role",
            ["role", "version", "algorithm"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._info_labels: dict[str, tuple[str, str, str]] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.reloads = Counter(
            "recsys_model_reloads",
            "looks at the model aliases by outcome",
            ["role", "outcome"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "recsys_fallbacks",
            "answers that used a fallback",
            ["route", "fallback"],
            registry=self.registry,
        )

        self.events = Counter(
            "recsys_events",
            "events received by POST /events, by outcome (stored, duplicate, refused)",
            ["outcome"],
            registry=self.registry,
        )
        self.served_lists = Counter(
            "recsys_served_lists",
            "served lists by recording outcome "
            "(recorded; deferred: kept in the outbox for a later "
            "try; refused: the store cannot hold it; dropped: lost)",
            ["outcome"],
            registry=self.registry,
        )

        self.answers = Counter(
            "recsys_answers",
            "answers by route and fallback kind (none: the model's own answer)",
            ["route", "fallback"],
            registry=self.registry,
        )
        self.user_lookups = Counter(
            "recsys_user_lookups",
            "user ids in requests, known or not to the served model",
            ["route", "known"],
            registry=self.registry,
        )
        self.item_lookups = Counter(
            "recsys_item_lookups",
            "item ids in requests (recent_items, "
            "exclude, item_id), known or not to the served model",
            ["route", "field", "known"],
            registry=self.registry,
        )

    def answered(self, route: str, fallback: str | None) -> None:
        """One answer, by the fallback it used (``none`` when the model answered itself)."""
        self.answers.labels(route, fallback or "none").inc()
        if fallback is not None:
            self.fallbacks.labels(route, fallback).inc()

    def looked_up(
        self, route: str, scorer, user_id: str | None = None, **items: Iterable[str]
    ) -> None:
        """Count ``user_id`` and the item ids of each field (``recent_items=[...]``) as known or
        unknown to ``scorer``'s model (``user_id`` as the model knows it: its pseudonym)."""
        if user_id is not None:
            self.user_lookups.labels(route, _known(scorer.user_index(user_id) >= 0)).inc()
        for name, ids in items.items():
            known = unknown = 0
            for item in ids:
                if scorer.item_index(str(item)) >= 0:
                    known += 1
                else:
                    unknown += 1
            if known:
                self.item_lookups.labels(route, name, "true").inc(known)
            if unknown:
                self.item_lookups.labels(route, name, "false").inc(unknown)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # labels() costs more than the increment: once per route & status
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def on_reload(self, role: str, outcome: str, served) -> None:
        self.reloads.labels(role, outcome).inc()
        if outcome == "loaded" and served is not None:
            self.model_version.labels(role).set(float(served.version))
            old = self._info_labels.get(role)
            if old is not None and self.multiprocess_dir:
                # a sample written to the shared folder cannot be removed: it goes to 0
                self.model_info.labels(*old).set(0)
            elif old is not None:
                self.model_info.remove(*old)
            self._info_labels[role] = (role, served.version, served.algorithm)
            self.model_info.labels(*self._info_labels[role]).set(1)

    def render(self) -> bytes:
        if self.multiprocess_dir:
            # every worker's samples, read from the shared folder at each scrape
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def process_exit(self) -> None:
        """Drop this process's live gauges from the shared folder (a worker that ends)."""
        if self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


def _known(flag: bool) -> str:
    return "true" if flag else "false"


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request by its route template and status."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(path, scope["method"], status, time.perf_counter() - start)
