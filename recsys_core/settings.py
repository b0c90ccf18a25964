"""The process's settings: one tree of sections, read once from the environment and ``.env``.

``get_settings()`` reads every section the first time it is called and keeps the result for the
life of the process; ``reset_settings()`` forgets it (tests, or a long-lived process that changed
its environment). Each variable keeps the name it is documented under (``RECSYS_IO_RETRIES``,
...); the environment wins over a ``.env`` file in the working directory, read the same way by
every section. A bad value is a :class:`~recsys_core.exceptions.ConfigError` that names the
variable, shows the value and says what is expected.

The README's table of variables is generated from this tree (:func:`markdown_table`; a test
keeps the two in step). A section either names each variable (``RECSYS_IO_RETRIES``) or reads
every field under one prefix (``RECSYS_SERVE_`` + the field's name, the service's section);
what a field is, the table's last column, is the docstring under it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recsys_core.exceptions import ConfigError


def _env(name: str, default: Any, *also: str, **constraints: Any) -> Any:
    """A field read from the variable ``name`` (its documented name, kept), else from the
    variables ``also`` in order (another tool's name for the same thing). What the field is, for
    the README's table, is its docstring."""
    alias: str | AliasChoices = AliasChoices(name, *also) if also else name
    return Field(default, validation_alias=alias, **constraints)


class _Section(BaseSettings):
    # an empty variable is an unset one (its default), as everywhere else in recsys
    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class RetrySettings(_Section):
    """Retries of the tasks that do I/O (collection, MLflow, S3)."""

    io_retries: int = _env("RECSYS_IO_RETRIES", 3, ge=0, le=10)
    """retries of an I/O task after its first attempt (0 to 10)"""
    io_retry_delays: Annotated[tuple[float, ...], NoDecode] = _env(
        "RECSYS_IO_RETRY_DELAYS", (2.0, 5.0, 15.0)
    )
    """seconds before each retry, comma-separated"""

    @field_validator("io_retry_delays", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return tuple(float(p) for p in value.split(","))
            except ValueError:
                raise ValueError("not a comma-separated list of seconds; e.g. 2,5,15") from None
        return value

    @field_validator("io_retry_delays")
    @classmethod
    def _not_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(d < 0 for d in value):
            raise ValueError("delays cannot be negative")
        return value


class PromotionLockSettings(_Section):
    """The lock that serializes promotions of one alias (``recsys_core.tracking``)."""

    ttl: float = _env("RECSYS_PROMOTION_LOCK_TTL", 120.0, gt=0)
    """seconds a promotion lock is held before another run may take it over"""
    wait: float = _env("RECSYS_PROMOTION_LOCK_WAIT", 180.0, gt=0)
    """seconds a run waits for the promotion lock"""


class MovieLensSettings(_Section):
    """Where the MovieLens releases come from."""

    url: str | None = _env("RECSYS_MOVIELENS_URL", None)
    """where MovieLens zips and their .md5 are downloaded from (default: GroupLens)"""
    cache_dir: Path | None = _env("RECSYS_CACHE_DIR", None)
    """cache of MovieLens zips (default: ~/.cache/recsys)"""


class DatabaseSourceSettings(_Section):
    """How database sources are read (``recsys_core.data.database``): every field but the
    password is read from ``RECSYS_DATA_DB_`` + its name."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_DATA_DB_")  # the rest: _Section's

    statement_timeout_s: float = Field(600.0, gt=0)
    """seconds a read may run on a database source before it is cancelled (PostgreSQL:
    statement_timeout; SQLite: interrupted by a progress handler)"""
    password_hosts: list[str] = Field(default_factory=list)
    """hosts (host or host:port, JSON list) that may receive PGPASSWORD; the event store's host
    always may"""
    pgpassword: SecretStr | None = _env("PGPASSWORD", None)
    """libpq's password variable"""


class TrainingSettings(_Section):
    """Runtime choices of training (not hyperparameters)."""

    sgd_parallel_min_ratings: int = _env("RECSYS_SGD_PARALLEL_MIN_RATINGS", 300_000, ge=0)
    """ratings from which an sgd-mf epoch runs its blocks in parallel (0: always)"""
    torch_threads: int | None = _env("RECSYS_TORCH_THREADS", None, ge=1)
    """threads of PyTorch's CPU kernels while a neural model (mult-vae) trains (default: PyTorch's
    own, from OMP_NUM_THREADS or the cores)"""
    keep_run_files: bool = _env("RECSYS_KEEP_RUN_FILES", False)
    """keep a run's working files under .recsys after the run"""
    git_commit: str | None = _env("RECSYS_GIT_COMMIT", None)
    """the commit recorded on runs (default: asked of git)"""


class TuningSettings(_Section):
    """Hyperparameter studies (``recsys tune``)."""

    storage: str | None = _env("RECSYS_TUNE_STORAGE", None)
    """Optuna storage URL (default: sqlite in .recsys)"""
    dask_address: str | None = _env("RECSYS_DASK_ADDRESS", None)
    """Dask scheduler that runs the trials (default: a local cluster)"""
    dask_workers: int = _env("RECSYS_DASK_WORKERS", 2, ge=1)
    """workers of the local Dask cluster"""


class SparkSection(_Section):
    """Where Spark runs (``recsys_core.spark``; the spark-als models, the spark engine)."""

    master: str = _env("RECSYS_SPARK_MASTER", "local[*]")
    """Spark master: local[*] or a spark:// URL"""
    connect_timeout: float = _env("RECSYS_SPARK_CONNECT_TIMEOUT", 5.0, gt=0)
    """seconds to reach a spark:// master"""
    driver_memory: str = _env("RECSYS_SPARK_DRIVER_MEMORY", "2g")
    """memory of the Spark driver"""
    shuffle_partitions: int | None = _env("RECSYS_SPARK_SHUFFLE_PARTITIONS", None, ge=1)
    """Spark's shuffle partitions (default: Spark's)"""
    packages: str = _env("RECSYS_SPARK_PACKAGES", "")
    """Maven coordinates Spark fetches (hadoop-aws for s3://)"""
    jars: str = _env("RECSYS_SPARK_JARS", "")
    """local jars given to Spark, comma-separated"""
    scratch_dir: str | None = _env("RECSYS_SPARK_SCRATCH_DIR", None)
    """a folder mounted at the same path on the driver and every worker"""


class CliSettings(_Section):
    """The ``recsys`` command."""

    debug: bool = _env("RECSYS_DEBUG", False)
    """print the traceback of an error (as --debug)"""


class S3Settings(_Section):
    """How S3 is reached (sources and snapshots on ``s3://``). A silent endpoint (one that
    accepts connections and never answers) costs at most :meth:`worst_case_seconds` per request
    (33 s with the defaults; about 16 s when connections are accepted at once)."""

    endpoint_url: str | None = _env(
        "RECSYS_S3_ENDPOINT_URL", None, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"
    )
    """S3 endpoint (MinIO...); else AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL"""
    connect_timeout: float = _env("RECSYS_S3_CONNECT_TIMEOUT", 5.0, gt=0)
    """seconds to open a connection to S3"""
    # the wait for each read of the socket, not for the whole object: a healthy store sends
    # bytes long before, and a silent one is given up on quickly
    read_timeout: float = _env("RECSYS_S3_READ_TIMEOUT", 5.0, gt=0)
    """seconds to wait for each S3 response read"""
    max_attempts: int = _env("RECSYS_S3_MAX_ATTEMPTS", 3, ge=1, le=10)
    """attempts per S3 request, the first included (botocore retries)"""

    def worst_case_seconds(self) -> float:
        """Upper bound of one request against a silent endpoint, botocore's backoff included."""
        # botocore's standard mode sleeps up to 2**(n-1) s (capped at 20 s) before retry n
        backoff = sum(min(2.0 ** (n - 1), 20.0) for n in range(1, self.max_attempts))
        return self.max_attempts * (self.connect_timeout + self.read_timeout) + backoff


class TrackingSection(_Section):
    """The MLflow side that recsys itself reads (MLflow reads its own variables too)."""

    artifact_endpoint_url: str | None = _env(
        "MLFLOW_S3_ENDPOINT_URL", None, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"
    )
    """the S3 endpoint of MLflow's artifact store, named in messages; else AWS_ENDPOINT_URL_S3, then
    AWS_ENDPOINT_URL"""


class EvaluationSection(_Section):
    """Limits of evaluation and of top-k lists."""

    max_k: int = _env("RECSYS_MAX_K", 1000, ge=1)
    """longest top-k list an evaluation computes"""


class EventStoreSettings(_Section):
    """The event store (``recsys_core.events``): events, served lists, tombstones, API keys."""

    url: str = _env("RECSYS_EVENTS_URL", "sqlite:///.recsys/events.db")
    """SQLAlchemy URL of the event store"""
    connect_timeout: int = _env("RECSYS_EVENTS_CONNECT_TIMEOUT", 5, ge=1)
    """seconds to open a database connection"""


class KeySettings(_Section):
    """The API keys of the service (``recsys keys``)."""

    pepper: SecretStr | None = _env("RECSYS_KEYS_PEPPER", None)
    """server-side secret keying the stored hashes of the API keys; default for an embedded SQLite
    store: keys.pepper beside it"""


class PrivacySection(_Section):
    """Pseudonyms and forgetting (``recsys_core.privacy``, ``recsys forget``)."""

    pseudonym_key: SecretStr | None = _env("RECSYS_PSEUDONYM_KEY", None)
    """HMAC key of the pseudonymous user ids and of the tombstones' keyed hashes"""
    actor: str | None = _env("RECSYS_ACTOR", None)
    """who forgets, in the audit (default: the OS user)"""
    # a client's setting, not the service's, although it shares the RECSYS_SERVE_ prefix
    serve_url: str | None = _env("RECSYS_SERVE_URL", None)
    """the service that recsys forget tells at once and recsys doctor checks"""
    serve_api_key: SecretStr | None = _env("RECSYS_SERVE_API_KEY", None)
    """API key (scope admin) with which recsys forget calls the service"""


class ServiceSettings(_Section):
    """The service (``recsys serve``): what it serves and the limits of a request; every
    field is read from ``RECSYS_SERVE_`` + its name."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_SERVE_")  # the rest: _Section's

    registered_model: str = Field("recsys", min_length=1)
    """registered model name"""
    ranking_alias: str = Field("champion-ranking", min_length=1)
    """alias of the version serving lists (/recommendations, /similar-items)"""
    rating_alias: str = Field("champion-rating", min_length=1)
    """alias of the version serving /predict"""
    ready_roles: list[Literal["ranking", "rating"]] | None = None
    """roles that must be served for GET /ready to answer 200 (JSON list, e.g. ["ranking"]);
    default: at least one role"""
    tracking_uri: str | None = None
    """MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else the embedded store under
    ./.recsys"""
    poll_interval_s: float = Field(30.0, gt=0)
    """seconds between two looks at the aliases (hot reload)"""
    startup_wait_s: float = Field(60.0, ge=0)
    """at start, wait this long for the first look at the registry before accepting requests (then
    start anyway, not ready)"""
    reuse_port: bool = True
    """with --workers > 1 on Linux, each worker accepts on its own socket (SO_REUSEPORT) and the
    kernel spreads the connections; false: one shared socket, where the first worker awake takes
    every waiting connection"""
    default_k: int = Field(10, ge=1)
    """list length when a request gives no k"""
    max_k: int = Field(100, ge=1)
    """largest k a request may ask for"""
    max_recent_items: int = Field(200, ge=1)
    """most recent_items (and exclude ids) one request may carry"""

    events_url: str | None = None
    """SQLAlchemy URL of the event store (POST /events, served lists); default: $RECSYS_EVENTS_URL,
    else sqlite:///.recsys/events.db"""
    max_event_batch: int = Field(1000, ge=1)
    """most events one POST /events may carry (413 beyond)"""
    served_queue_size: int = Field(10_000, ge=1)
    """served lists waiting to be recorded; beyond, a list is not recorded (counted in /metrics) and
    the answer is still sent"""

    auth: bool = True
    """check API keys (Authorization: Bearer, `recsys keys`); false only through `recsys serve
    --no-auth`, which refuses any address but loopback"""
    key_cache_s: float = Field(5.0, ge=0, le=60)
    """seconds a checked API key is remembered by a worker: a revoked key stops working within this
    time"""
    # limits at the edge (recsys_service/limits.py) and of uvicorn (recsys serve)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    """largest request body in bytes (413 beyond, checked before the body is read)"""
    max_json_depth: int = Field(16, ge=2)
    """deepest nesting of a JSON body (400 beyond)"""
    body_timeout_s: float = Field(30.0, gt=0)
    """seconds a request body may take to arrive whole (408 beyond, and the connection is closed)"""
    header_timeout_s: float = Field(10.0, gt=0)
    """seconds the request line and headers may take to arrive, from the connection opening or the
    previous answer (closed beyond)"""
    keep_alive_s: int = Field(5, ge=1)
    """seconds an idle keep-alive connection stays open"""
    limit_concurrency: int | None = Field(1000, ge=1)
    """connections and requests one worker holds at once (503 beyond); null: no limit"""
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    """largest request head (request line and headers) buffered by the h11 parser"""
    served_outbox: str | None = ".recsys/served-outbox"
    """folder of the outbox of served lists: each list is written there before it is answered and
    deleted once recorded, so that lists survive the event store being away and the process being
    killed (replayed at the next start); null: no outbox (a list not recorded is dropped)"""
    served_outbox_fsync_s: float | None = Field(1.0, ge=0)
    """seconds a list written to the outbox may wait before the file is synced to disk (fdatasync;
    what a crash of the machine can lose): 0 syncs every list before it is answered; null leaves it
    to the kernel (a killed process loses nothing, a power cut may)"""
    served_outbox_max: int = Field(100_000, ge=1)
    """served lists the outbox holds while the event store is away; beyond, a list is dropped
    (counted in /metrics)"""

    forget_poll_s: float = Field(5.0, gt=0)
    """seconds between two reads of the tombstones of forgotten users (recsys forget); POST
    /tombstones/refresh reads them at once"""

    def alias(self, role: str) -> str:
        return self.ranking_alias if role == "ranking" else self.rating_alias


class Settings(pydantic.BaseModel):
    """Every section, as :func:`get_settings` returns them."""

    model_config = pydantic.ConfigDict(frozen=True)

    retries: RetrySettings
    promotion_lock: PromotionLockSettings
    movielens: MovieLensSettings
    database: DatabaseSourceSettings
    training: TrainingSettings
    tuning: TuningSettings
    spark: SparkSection
    cli: CliSettings
    s3: S3Settings
    tracking: TrackingSection
    evaluation: EvaluationSection
    events: EventStoreSettings
    keys: KeySettings
    privacy: PrivacySection
    serving: ServiceSettings


SECTIONS: dict[str, type[_Section]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Settings.model_fields.items()
}


def _read(section: type[_Section]) -> _Section:
    try:
        return section()
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = variable_of(section, field)
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}={error.get('input')!r}: {message}")
        raise ConfigError(
            "bad setting: " + "; ".join(problems) + " (environment or .env; "
            "unset it for the default, see the README's table of variables)"
        ) from None


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read on the first call.

    Raises
    ------
    ConfigError
        A variable with a bad value, named with its value and what it should be.
    """
    return Settings(**{name: _read(section) for name, section in SECTIONS.items()})


def reset_settings() -> None:
    """Forget the settings read so far: the next :func:`get_settings` reads them again."""
    get_settings.cache_clear()


def variable_of(section: type[BaseSettings], field: str) -> str:
    """The variable that sets ``field`` of ``section`` (the first one, where several may)."""
    info = section.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    if alias is None and field in section.model_fields:
        return f"{section.model_config.get('env_prefix', '')}{field}".upper()
    return field


def variables() -> list[tuple[str, str, str]]:
    """``(variable, default, description)`` of every setting of the tree, in order."""
    out = []
    for section in SECTIONS.values():
        for field, info in section.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, tuple):
                shown = ",".join(f"{d:g}" for d in default)
            else:
                shown = (
                    ""
                    if default is None or default == []
                    else str(default).lower()
                    if isinstance(default, bool)
                    else str(default)
                )
            # a description written as a docstring may run over several lines
            what = " ".join((info.description or "").split())
            out.append((variable_of(section, field), shown, what))
    return out


def markdown_table() -> str:
    """The README's table of the variables of this tree."""
    lines = ["| variable | default | what |", "|---|---|---|"]
    lines += [
        f"| `{name}` | {f'`{default}`' if default else '-'} | {what} |"
        for name, default, what in variables()
    ]
    return "\n".join(lines) + "\n"
