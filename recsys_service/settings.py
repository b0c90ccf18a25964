"""Service settings, read from ``RECSYS_SERVE_*`` environment variables (or ``.env``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

RANKING = "ranking"
RATING = "rating"
ROLES = (RANKING, RATING)


class ServiceSettings(BaseSettings):
    """What the service serves and the limits of a request."""

    model_config = SettingsConfigDict(
        env_prefix="RECSYS_SERVE_", env_file=".env", extra="ignore", frozen=True
    )

    registered_model: str = Field("recsys", min_length=1, description="registered model name")
    ranking_alias: str = Field(
        "champion-ranking",
        min_length=1,
        description="alias of the version serving lists (/recommendations, /similar-items)",
    )
    rating_alias: str = Field(
        "champion-rating", min_length=1, description="alias of the version serving /predict"
    )
    ready_roles: list[Literal["ranking", "rating"]] | None = Field(
        None,
        description="roles that must be served for GET /ready to answer 200 (JSON list, "
        'e.g. ["ranking"]); default: at least one role',
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else the "
        "embedded store under ./.recsys",
    )
    poll_interval_s: float = Field(
        30.0, gt=0, description="seconds between two looks at the aliases (hot reload)"
    )
    startup_wait_s: float = Field(
        60.0,
        ge=0,
        description="at start, wait this long for the first look at the registry "
        "before accepting requests (then start anyway, not ready)",
    )
    reuse_port: bool = Field(
        True,
        description="with --workers > 1 on Linux, each worker accepts on its own socket "
        "(SO_REUSEPORT) and the kernel spreads the connections; false: one "
        "shared socket, where the first worker awake takes every waiting "
        "connection",
    )
    default_k: int = Field(10, ge=1, description="list length when a request gives no k")
    max_k: int = Field(100, ge=1, description="largest k a request may ask for")
    max_recent_items: int = Field(
        200, ge=1, description="most recent_items (and exclude ids) one request may carry"
    )

    events_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the event store (POST /events, served lists); "
        "default: $RECSYS_EVENTS_URL, else sqlite:///.recsys/events.db",
    )
    max_event_batch: int = Field(
        1000, ge=1, description="most events one POST /events may carry (413 beyond)"
    )
    served_queue_size: int = Field(
        10000,
        ge=1,
        description="served lists waiting to be recorded; beyond, a list is not "
        "recorded (counted in /metrics) and the answer is still sent",
    )

    auth: bool = Field(
        True,
        description="check API keys (Authorization: Bearer, `recsys keys`); false only "
        "through `recsys serve --no-auth`, which refuses any address but "
        "loopback",
    )
    key_cache_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="seconds a checked API key is remembered by a worker: a "
        "revoked key stops working within this time",
    )
    # limits at the edge (recsys_service/limits.py) and of uvicorn (recsys serve)
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="largest request body in bytes (413 beyond, checked before the body is read)",
    )
    max_json_depth: int = Field(16, ge=2, description="deepest nesting of a JSON body (400 beyond)")
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="seconds a request body may take to arrive whole (408 beyond, "
        "and the connection is closed)",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="seconds the request line and headers may take to arrive, from "
        "the connection opening or the previous answer (closed beyond)",
    )
    keep_alive_s: int = Field(
        5, ge=1, description="seconds an idle keep-alive connection stays open"
    )
    limit_concurrency: int | None = Field(
        1000,
        ge=1,
        description="connections and requests one worker holds at once (503 "
        "beyond); null: no limit",
    )
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="largest request head (request line and headers) buffered by the h11 parser",
    )
    served_outbox: str | None = Field(
        ".recsys/served-outbox",
        description="folder of the outbox of served lists: each list "
        "is written there before it is answered and deleted once recorded, so that lists "
        "survive the event store being away and the process being killed (replayed at the next "
        "start); null: no outbox (a list not recorded is dropped)",
    )
    served_outbox_fsync_s: float | None = Field(
        1.0,
        ge=0,
        description="seconds a list written to the outbox may wait before the file is synced "
        "to disk (fdatasync; what a crash of the machine can lose): 0 syncs every list before "
        "it is answered; null leaves it to the kernel (a killed process loses nothing, a "
        "power cut may)",
    )
    served_outbox_max: int = Field(
        100_000,
        ge=1,
        description="served lists the outbox holds while the event store is "
        "away; beyond, a list is dropped (counted in /metrics)",
    )

    forget_poll_s: float = Field(
        5.0,
        gt=0,
        description="seconds between two reads of the tombstones of forgotten users "
        "(recsys forget); POST /tombstones/refresh reads them at once",
    )

    def alias(self, role: str) -> str:
        return self.ranking_alias if role == RANKING else self.rating_alias
