"""The process's settings: one tree of sections, read once from the environment and ``.env``.

``get_settings()`` reads every section the first time it is called and keeps the result for the
life of the process; ``reset_settings()`` forgets it (tests, or a long-lived process that changed
its environment). Each variable keeps the name it is documented under (``RECSYS_IO_RETRIES``,
...); the environment wins over a ``.env`` file in the working directory, read the same way by
every section. A bad value is a :class:`~recsys_core.exceptions.ConfigError` that names the
variable, shows the value and says what is expected.

The README's table of variables is generated from this tree (:func:`markdown_table`; a test
keeps the two in step). The service's own settings (``RECSYS_SERVE_*``) live in
``recsys_service.settings``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recsys_core.exceptions import ConfigError


def _env(name: str, default: Any, description: str, **constraints: Any) -> Any:
    """A field read from the variable ``name`` (its documented name, kept)."""
    return Field(default, validation_alias=name, description=description, **constraints)


class _Section(BaseSettings):
    # an empty variable is an unset one (its default), as everywhere else in recsys
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )


class RetrySettings(_Section):
    """Retries of the tasks that do I/O (collection, MLflow, S3)."""

    io_retries: int = _env(
        "RECSYS_IO_RETRIES",
        3,
        "retries of an I/O task after its first attempt (0 to 10)",
        ge=0,
        le=10,
    )
    io_retry_delays: Annotated[tuple[float, ...], NoDecode] = _env(
        "RECSYS_IO_RETRY_DELAYS", (2.0, 5.0, 15.0), "seconds before each retry, comma-separated"
    )

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

    ttl: float = _env(
        "RECSYS_PROMOTION_LOCK_TTL",
        120.0,
        "seconds a promotion lock is held before another run may take it over",
        gt=0,
    )
    wait: float = _env(
        "RECSYS_PROMOTION_LOCK_WAIT", 180.0, "seconds a run waits for the promotion lock", gt=0
    )


class MovieLensSettings(_Section):
    """Where the MovieLens releases come from."""

    url: str | None = _env(
        "RECSYS_MOVIELENS_URL",
        None,
        "where MovieLens zips and their .md5 are downloaded from (default: GroupLens)",
    )
    cache_dir: Path | None = _env(
        "RECSYS_CACHE_DIR", None, "cache of MovieLens zips (default: ~/.cache/recsys)"
    )


class TrainingSettings(_Section):
    """Runtime choices of training (not hyperparameters)."""

    sgd_parallel_min_ratings: int = _env(
        "RECSYS_SGD_PARALLEL_MIN_RATINGS",
        300_000,
        "ratings from which an sgd-mf epoch runs its blocks in parallel (0: always)",
        ge=0,
    )
    torch_threads: int | None = _env(
        "RECSYS_TORCH_THREADS",
        None,
        "threads of PyTorch's CPU kernels while a neural model (mult-vae) trains (default: "
        "PyTorch's own, from OMP_NUM_THREADS or the cores)",
        ge=1,
    )
    keep_run_files: bool = _env(
        "RECSYS_KEEP_RUN_FILES", False, "keep a run's working files under .recsys after the run"
    )
    git_commit: str | None = _env(
        "RECSYS_GIT_COMMIT", None, "the commit recorded on runs (default: asked of git)"
    )


class TuningSettings(_Section):
    """Hyperparameter studies (``recsys tune``)."""

    storage: str | None = _env(
        "RECSYS_TUNE_STORAGE", None, "Optuna storage URL (default: sqlite in .recsys)"
    )
    dask_address: str | None = _env(
        "RECSYS_DASK_ADDRESS",
        None,
        "Dask scheduler that runs the trials (default: a local cluster)",
    )
    dask_workers: int = _env("RECSYS_DASK_WORKERS", 2, "workers of the local Dask cluster", ge=1)


class SparkSection(_Section):
    """Where Spark runs (``recsys_core.spark``; the spark-als models, the spark engine)."""

    master: str = _env(
        "RECSYS_SPARK_MASTER", "local[*]", "Spark master: local[*] or a spark:// URL"
    )
    connect_timeout: float = _env(
        "RECSYS_SPARK_CONNECT_TIMEOUT", 5.0, "seconds to reach a spark:// master", gt=0
    )
    driver_memory: str = _env("RECSYS_SPARK_DRIVER_MEMORY", "2g", "memory of the Spark driver")
    shuffle_partitions: int | None = _env(
        "RECSYS_SPARK_SHUFFLE_PARTITIONS",
        None,
        "Spark's shuffle partitions (default: Spark's)",
        ge=1,
    )
    packages: str = _env(
        "RECSYS_SPARK_PACKAGES", "", "Maven coordinates Spark fetches (hadoop-aws for s3://)"
    )
    jars: str = _env("RECSYS_SPARK_JARS", "", "local jars given to Spark, comma-separated")
    scratch_dir: str | None = _env(
        "RECSYS_SPARK_SCRATCH_DIR",
        None,
        "a folder mounted at the same path on the driver and every worker",
    )


class CliSettings(_Section):
    """The ``recsys`` command."""

    debug: bool = _env("RECSYS_DEBUG", False, "print the traceback of an error (as --debug)")


class Settings(pydantic.BaseModel):
    """Every section, as :func:`get_settings` returns them."""

    model_config = pydantic.ConfigDict(frozen=True)

    retries: RetrySettings
    promotion_lock: PromotionLockSettings
    movielens: MovieLensSettings
    training: TrainingSettings
    tuning: TuningSettings
    spark: SparkSection
    cli: CliSettings


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
            info = section.model_fields.get(field)
            name = info.validation_alias if info is not None else field
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


def variables() -> list[tuple[str, str, str]]:
    """``(variable, default, description)`` of every setting of the tree, in order."""
    out = []
    for section in SECTIONS.values():
        for info in section.model_fields.values():
            default = info.default
            if isinstance(default, tuple):
                shown = ",".join(f"{d:g}" for d in default)
            else:
                shown = (
                    ""
                    if default is None
                    else str(default).lower()
                    if isinstance(default, bool)
                    else str(default)
                )
            out.append((str(info.validation_alias), shown, info.description or ""))
    return out


def markdown_table() -> str:
    """The README's table of the variables of this tree."""
    lines = ["| variable | default | what |", "|---|---|---|"]
    lines += [
        f"| `{name}` | {f'`{default}`' if default else '-'} | {what} |"
        for name, default, what in variables()
    ]
    return "\n".join(lines) + "\n"
