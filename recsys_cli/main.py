"""``recsys``: train, evaluate, recommend, roll back, list models, check the setup.

Every error reaches the user as one ``error:`` line on stderr (``--debug`` adds the traceback),
and the exit code says what kind of error it was:

====  =====================================================================================
0     success
1     a failure: a server, the artifact store, training, or an unexpected error
2     bad usage or bad input: an unknown option or model, a bad value, unreadable or invalid
      data, an output path that cannot be written
3     a training run refused by the data validation or the gate (``recsys train``)
====  =====================================================================================
"""

from __future__ import annotations

import os

# BLAS threads pinned before numpy loads; the models do their own threading
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar  # noqa: E402

import typer  # noqa: E402
from dotenv import load_dotenv  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from recsys_core.exceptions import (  # noqa: E402
    ConfigError,
    DataError,
    DataValidationError,
    GateRejectedError,
    RecsysError,
)
from recsys_core.redaction import redact  # noqa: E402

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

load_dotenv(Path.cwd() / ".env", override=False)

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3

console = Console()
err = Console(stderr=True)


def exit_code(exc: BaseException) -> int:
    """3 for a run refused by validation or the gate, 2 for bad input (settings, options,
    data), 1 for every other failure."""
    from pydantic import ValidationError

    if isinstance(exc, DataValidationError | GateRejectedError):
        return EXIT_REFUSED
    if isinstance(exc, ConfigError | DataError | ValidationError):
        return EXIT_BAD_INPUT
    return EXIT_FAILURE


def error_message(exc: BaseException) -> str:
    """One line for the user: recsys's own errors say what to fix; others name their type."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, RecsysError):
        text = f"{type(exc).__name__}: {text}"
    if isinstance(exc, MemoryError):
        text += " (not enough memory; try a smaller data set, k or model)"
    return redact(text)


class RecsysGroup(TyperGroup):
    """Turns any exception a command lets through into one ``error:`` line and an exit code."""

    def invoke(self, ctx):
        _console_on_this_stderr()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors (exit 2): typer prints them with the usage line
        except Exception as exc:  # noqa: BLE001 - the global handler: every error, one line
            if ctx.params.get("debug") or os.environ.get("RECSYS_DEBUG"):
                err.print(redact("".join(traceback.format_exception(exc))), end="",
                          highlight=False, markup=False, soft_wrap=True)
            hint = "" if isinstance(exc, RecsysError) else " (--debug shows the traceback)"
            _print_error(error_message(exc) + hint)
            raise typer.Exit(exit_code(exc)) from None


app = typer.Typer(
    name="recsys",
    help="Train, check and ship recommender models (Prefect flows, MLflow registry).\n\n"
    "Exit codes: 0 success, 1 failure, 2 bad usage or input, 3 training run refused.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=RecsysGroup,
)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="print the traceback of an error "
                                        "(also RECSYS_DEBUG=1)")] = False,
) -> None:
    """Options of every command."""


ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="model hyperparameter key=value (repeatable)"),
]


def _print_error(message: str) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    _print_error(redact(message))
    raise typer.Exit(code)


def _note(message: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="any run setting as section.field=value, e.g. "
                 "gate.guard_tolerance=0.02 or validation.min_rows=50 (repeatable; values are "
                 "JSON or plain text)"),
]


@app.command()
def train(
    source: Annotated[str | None, typer.Option(help="synthetic[:size], movielens-100k..., a "
                                               "file, s3://, postgresql://...?table=events "
                                               "[default: synthetic]")] = None,
    since: Annotated[str | None, typer.Option(help="database sources: 'last' (only the rows "
                                              "after the last collection, merged with its "
                                              "snapshot) or a watermark TIMESTAMP[:ID]")]
    = None,
    model: Annotated[str | None, typer.Option(help="model name (see: recsys models) "
                                              "[default: sgd-mf]")] = None,
    param: ParamOpt = None,
    synthetic_size: Annotated[str | None, typer.Option(help="tiny, small, 100k, 1m, 10m "
                                                       "[default: 100k]")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the synthetic data and of the "
                                             "random split [default: 42]")] = None,
    columns: Annotated[str | None, typer.Option(help="user=..,item=..,rating=..,timestamp=..")]
    = None,
    duplicates: Annotated[str | None, typer.Option(help="repeated (user, item) pairs: latest, "
                                                   "mean or refuse [default: latest]")] = None,
    split: Annotated[str | None, typer.Option(help="time, random or last_k [default: time]")]
    = None,
    test_fraction: Annotated[float | None, typer.Option(help="share of rows in test "
                                                        "[default: 0.2]")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="top-k length [default: 10]")] = None,
    quarantine: Annotated[bool | None, typer.Option(
        "--quarantine/--no-quarantine", help="set invalid rows aside instead of failing")] = None,
    role: Annotated[list[str] | None, typer.Option(
        "--role", help="serving role to compete for: ranking or rating (repeatable) "
        "[default: every role the model can fill]")] = None,
    min_improvement: Annotated[float | None, typer.Option(
        help="gain over the champion every role's gate requires [default: 0.001]; one role: "
        "--set gate.ranking.min_improvement=...")] = None,
    refit_full: Annotated[bool | None, typer.Option(
        "--refit-full/--no-refit-full", help="serve a refit on all rows of the split once a "
        "gate passed [default: on]")] = None,
    set_: SetOpt = None,
    registered_model: Annotated[str | None, typer.Option(help="[default: recsys]")] = None,
    experiment: Annotated[str | None, typer.Option(help="[default: recsys-training]")] = None,
) -> None:
    """Run the training flow: collect, validate, features, train, evaluate, gate, promote.

    A run competes for the serving roles its model can fill (ranking: top-k lists, judged on
    NDCG@k against popularity; rating: /predict, judged on RMSE against the bias model) and is
    promoted to the champion alias of each role whose gate it passes (champion-ranking,
    champion-rating).

    Exit codes: 0 promoted for at least one role; 3 refused by the data validation or every
    gate (the champions stay); 2 bad settings or data; 1 any other failure.
    """
    from recsys_core.models.registry import parse_params

    given = {
        "data": {"source": source, "synthetic_size": synthetic_size, "seed": seed,
                 "columns": columns, "duplicates": duplicates, "since": since},
        "validation": {"quarantine": quarantine},
        "split": {"strategy": split, "test_fraction": test_fraction, "seed": seed},
        "gate": {r: {"min_improvement": min_improvement} for r in ("ranking", "rating")},
        "roles": role or None, "refit_full": refit_full,
        "k": k, "registered_model": registered_model, "experiment": experiment,
    }
    try:
        raw = _drop_unset(given)
        raw["model"] = {"name": model, "params": parse_params(param)} if model else {
            "params": parse_params(param)}
        for assignment in set_ or []:
            _assign(raw, assignment)
    except RecsysError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    _quiet_prefect()
    from flows.training import TrainingParams, outcome_of, training_flow

    params = _validated(TrainingParams, raw)
    started = time.perf_counter()
    # a failed run raises: the global handler prints one error line with its exit code
    outcome = outcome_of(training_flow(params))
    _print_outcome(outcome, time.perf_counter() - started)
    if not outcome["promoted"]:
        raise typer.Exit(EXIT_REFUSED)


def _drop_unset(values: dict) -> dict:
    """The options given on the command line (None: not given, the run's default applies)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_unset(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


def _assign(raw: dict, assignment: str) -> None:
    """Apply ``section.field=value`` (``value`` read as JSON, else kept as text) to ``raw``."""
    path, sep, text = assignment.partition("=")
    keys = [k.strip() for k in path.split(".")]
    if not sep or not all(keys):
        raise RecsysError(f"bad --set {assignment!r}; expected section.field=value, such as "
                          "gate.min_improvement=0.01")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    node = raw
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise RecsysError(f"bad --set {assignment!r}: {key!r} is not a section")
    node[keys[-1]] = value


def _validated(model: type[M], raw: dict) -> M:
    """``raw`` as the flow's parameters ``model``; invalid settings exit 2, named one a line."""
    import pydantic

    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        _fail(_pydantic_message(exc), EXIT_BAD_INPUT)
        raise  # not reached: _fail exits


def _pydantic_message(exc) -> str:
    """One line per invalid setting, named by its dotted path (``split.test_fraction``)."""
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        parts.append(f"{where}: {msg}" if where else msg)
    return "invalid run settings: " + "; ".join(parts)


def _quiet_prefect() -> None:
    """Prefect's console without tracebacks (the CLI prints one error line) or telemetry."""
    import logging

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary server of a run without PREFECT_API_URL needs more than the default 20 s to
    # start (database migration) on a busy or first-time machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    _console_on_this_stderr()
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not getattr(
                    handler, "_recsys_quiet", False):
                handler.format = _without_traceback(handler.format)
                handler._recsys_quiet = True


def _console_on_this_stderr() -> None:
    """Point Prefect's console handlers, if any, at the current ``sys.stderr``.

    Prefect sets its handlers up once per process, on the ``sys.stderr`` of that moment; a
    second command in the same process (a notebook, a test's CLI runner) may have another one,
    and the first may be closed by now ("I/O operation on closed file" in every log line).
    """
    import logging

    if "prefect.logging.handlers" not in sys.modules:
        return  # Prefect has set nothing up in this process
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and handler.stream is not sys.stderr:
                with handler.lock or contextlib.nullcontext():  # not setStream: it flushes
                    handler.stream = handler.console.file = sys.stderr  # the old stream


def _without_traceback(format_record):
    import logging

    def format_(record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return format_record(record)
        copy = logging.makeLogRecord(record.__dict__)
        copy.exc_info = copy.exc_text = copy.stack_info = None
        return format_record(copy)

    return format_


def _print_outcome(outcome: dict, seconds: float) -> None:
    roles = {r: o for r, o in outcome["roles"].items() if o["verdict"] != "not-competing"}
    table = Table(title=f"run {outcome['run_id']} ({seconds:.0f} s)")
    table.add_column("metric")
    table.add_column("challenger", justify="right")
    columns = []
    for role, o in roles.items():
        if o.get("champion_version"):
            table.add_column(f"{role} champion v{o['champion_version']}", justify="right")
            columns.append(o.get("champion") or {})
    for name in outcome["baselines"]:
        table.add_column(name, justify="right")
        columns.append(outcome["baselines"][name])
    for name, value in outcome["metrics"].items():
        table.add_row(name, f"{value:.4f}", *(_f(c.get(name)) for c in columns))
    console.print(table)
    for role, o in roles.items():
        console.print(f"[bold]{role}[/] ({o['alias']}, {o['primary_metric']} against "
                      f"{o['baseline_name']}):", highlight=False)
        for reason in o.get("gate_reasons", []):
            style = "red" if reason.startswith("FAIL") else "green"
            console.print(f"  [{style}]{reason}[/]", highlight=False)
    for role, o in roles.items():
        version = o.get("champion_version")
        if o["verdict"] == "promoted":
            replaced = f" (version {version} is now {role}: replaced)" if version else ""
            console.print(f"[bold green]PROMOTED[/] model version {outcome['version']} is "
                          f"{o['alias']}{replaced}", highlight=False)
        else:
            kept = f"{o['alias']} stays version {version}" if version else f"no {o['alias']}"
            console.print(f"[bold yellow]REFUSED[/] ({role}) model version {outcome['version']}; "
                          f"{kept}", highlight=False)
    if outcome.get("refit"):
        r = outcome["refit"]
        console.print(f"served model refit on all {r['n_ratings']:,} rows of the split "
                      f"(data {r['data_digest'][:12]}, {r['seconds']:.1f} s); the judged model "
                      "is kept as evaluated_state", highlight=False)
    if not outcome["promoted"]:
        console.print(f"exit code {EXIT_REFUSED}: no role promoted", highlight=False)
    if outcome.get("run_url"):
        console.print(f"MLflow: {outcome['run_url']}", highlight=False, soft_wrap=True)
    else:
        console.print(f"MLflow: run {outcome['run_id']} in {outcome['tracking_uri']} (browse it "
                      f"with: mlflow ui --backend-store-uri {outcome['tracking_uri']})",
                      highlight=False, soft_wrap=True)
    if outcome.get("flow_run_url"):
        console.print(f"Prefect: {outcome['flow_run_url']}", highlight=False, soft_wrap=True)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


Duplicates = Literal["latest", "mean", "refuse"]
Engine = Literal["auto", "local", "spark"]


@app.command()
def evaluate(
    train_file: Annotated[str, typer.Option("--train", help="training file or s3:// URI")],
    test_file: Annotated[str, typer.Option("--test", help="test file or s3:// URI")],
    model: Annotated[str, typer.Option(help="model name")] = "sgd-mf",
    param: ParamOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", help="top-k length (clipped to the catalogue; "
                                   "at most RECSYS_MAX_K, 1000 by default)")] = 10,
    columns: Annotated[str | None, typer.Option(help="column mapping of both files")] = None,
    duplicates: Annotated[Duplicates, typer.Option(
        help="a (user, item) pair rated more than once: keep the latest rating, the mean, or "
        "refuse the file")] = "latest",
    rating_min: Annotated[float, typer.Option(help="lowest valid rating")] = 1.0,
    rating_max: Annotated[float, typer.Option(help="highest valid rating")] = 5.0,
    predictions_out: Annotated[Path | None, typer.Option(help="CSV of test predictions")] = None,
    recommendations_out: Annotated[Path | None, typer.Option(help="CSV of top-k lists")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    engine: Annotated[Engine, typer.Option(
        help="what scores the model: local; spark (Spark reads both Parquet files, local or "
        "s3://, and computes the metrics; factor models); auto: spark for the Spark models "
        "when both files are Parquet and no CSV output is asked, local otherwise")] = "auto",
) -> None:
    """Fit a model on --train and score it on --test (no flow, no tracking).

    Both files go through the same reading, duplicates policy and rating checks as training
    data; with the spark engine the test file is read by Spark only, and its rows are checked
    there (finite ratings on the scale, one rating a pair). With --json, a metric that cannot be
    computed is null, never NaN.
    """
    from recsys_core.data import collect
    from recsys_core.data.schema import check_rows
    from recsys_core.evaluation import evaluate as run_eval
    from recsys_core.evaluation.evaluate import check_k
    from recsys_core.features import Interactions
    from recsys_core.models.registry import create, parse_params

    # everything that can be judged without the data is judged before reading or fitting
    check_k(k)
    used = _evaluation_engine(engine, model, (train_file, test_file),
                              predictions_out is not None or recommendations_out is not None,
                              quiet=as_json)
    if not rating_min <= rating_max or not (math.isfinite(rating_min)
                                            and math.isfinite(rating_max)):
        raise ConfigError(f"the rating scale [{rating_min!r}, {rating_max!r}] is not a finite "
                          "interval; give --rating-min <= --rating-max")
    rec = create(model, parse_params(param))
    if predictions_out is not None and not rec.predicts_ratings:
        raise ConfigError(f"model {model!r} does not predict ratings; --predictions-out needs a "
                          "rating model (recsys models lists them)")
    check_output_path(predictions_out, "--predictions-out")
    check_output_path(recommendations_out, "--recommendations-out")
    if predictions_out is not None and recommendations_out is not None and (
            predictions_out.resolve() == recommendations_out.resolve()):
        raise ConfigError("--predictions-out and --recommendations-out name the same file; "
                          "give two paths")

    frames = {}
    # with the spark engine, the test file is read by Spark only
    reads = [("train", train_file)] + ([("test", test_file)] if used == "local" else [])
    for role, location in reads:
        collected = collect(location, columns=columns, duplicates=duplicates,
                            rating_scale=(rating_min, rating_max))
        frame = collected.interactions
        if frame.empty:
            raise DataError(f"{redact(location)!r} has no rows")
        check_rows(frame, (rating_min, rating_max), origin=repr(redact(location)))
        removed = collected.extra.get("duplicates_removed", 0)
        if removed and not as_json:
            _note(f"{removed} repeated (user, item) row(s) of the {role} file resolved by the "
                  f"duplicates policy {duplicates!r}")
        frames[role] = frame
    train_df = frames["train"]
    data = Interactions.from_frame(train_df)
    started = time.perf_counter()
    if as_json:
        rec.fit(data)
    else:
        _fit_with_progress(rec, data)
    fit_seconds = time.perf_counter() - started
    k_used = min(k, rec.n_items)
    if k_used < k:
        _note(f"k={k} is larger than the {rec.n_items} item(s) of the training data; using "
              f"k={k_used}")
    if used == "spark":
        result = _evaluate_in_spark(rec, train_file, test_file, columns=columns, k=k_used,
                                    rating_scale=(rating_min, rating_max))
    else:
        result = run_eval(rec, train_df, frames["test"], k=k_used,
                          keep_predictions=predictions_out is not None,
                          keep_recommendations=recommendations_out is not None)
    out = {
        "model": model,
        "params": rec.get_params(),
        **{name: _finite_or_none(value) for name, value in result.metrics.items()},
        "fit_seconds": round(fit_seconds, 4),
        "k": k_used,
        "k_requested": k,
        "n_train": int(len(train_df)),
        "n_test": result.counts["test_rows"],
        "engine": used,
        "cold_users": result.counts["cold_users"],
        "cold_items": result.counts["cold_items"],
        "cold_user_rows": result.counts["cold_user_rows"],
        "cold_item_rows": result.counts["cold_item_rows"],
    }
    if predictions_out is not None:
        result.predictions.to_csv(predictions_out, index=False)
    if recommendations_out is not None:
        result.recommendations.to_csv(recommendations_out, index=False)
    if as_json:
        sys.stdout.write(json.dumps(out, allow_nan=False, default=_jsonable) + "\n")
        return
    table = Table(title=f"{model} ({fit_seconds:.2f} s fit, {used} evaluation)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in out.items():
        if key in ("model", "params", "k", "k_requested", "engine"):
            continue
        if value is None:
            table.add_row(key, "n/a")
        elif isinstance(value, float | int):
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


def _is_parquet(location: str) -> bool:
    path = location.rstrip("/")
    return path.lower().endswith((".parquet", ".pq")) or (
        "://" not in path and Path(path).is_dir())


def _evaluation_engine(engine: str, model: str, files: tuple[str, str], csv_out: bool,
                       quiet: bool) -> str:
    """The engine of ``recsys evaluate``: the spark engine reads Parquet and writes no CSV (it
    collects no rows); ``auto`` falls back to local, and says why, where spark cannot run."""
    from recsys_core.spark.engine import resolve_engine

    used = resolve_engine(engine, model)
    if used == "local":
        return used
    not_parquet = [redact(f) for f in files if not _is_parquet(f)]
    why = (f"{', '.join(map(repr, not_parquet))} is not Parquet (.parquet, .pq or a folder of "
           "them)" if not_parquet else
           "--predictions-out/--recommendations-out need every row on this machine" if csv_out
           else "")  # fmt: skip
    if not why:
        return used
    if engine == "spark":
        raise ConfigError(f"--engine spark reads both files with Spark and collects no rows: "
                          f"{why}; convert the files to Parquet, drop the CSV outputs, or use "
                          "--engine local")
    if not quiet:
        _note(f"{model!r} is scored locally, not in Spark: {why}")
    return "local"


def _evaluate_in_spark(rec: Any, train_file: str, test_file: str, *, columns: str | None,
                       k: int, rating_scale: tuple[float, float]) -> Any:
    """Spark reads both files and scores ``rec``; the test rows are checked there first."""
    from recsys_core.data.files import parse_column_map
    from recsys_core.spark.evaluation import check_test_rows, spark_evaluation
    from recsys_core.spark.storage import read_parquet

    mapping = parse_column_map(columns)
    frames = []
    for location in (train_file, test_file):
        frame = read_parquet(location)
        for canonical, source in mapping.items():
            if source in frame.columns and source != canonical:
                frame = frame.withColumnRenamed(source, canonical)
        frames.append(frame)
    check_test_rows(frames[1], rating_scale, origin=repr(redact(test_file)))
    return spark_evaluation(rec, frames[0], frames[1], k=k)


def check_output_path(path: Path | None, option: str) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    shown = str(path)
    if path.is_dir():
        raise ConfigError(f"{option} {shown!r} is a folder; give a file path such as "
                          f"{str(path / 'out.csv')!r}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ConfigError(f"{option} {shown!r}: the folder {str(parent)!r} does not exist; create "
                          "it first or give another path")
    if not parent.is_dir():
        raise ConfigError(f"{option} {shown!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{option} {shown!r} cannot be written (permission denied); give a "
                          "path you can write to")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    """numpy scalars and other values of the model's parameters, as JSON (finite) values."""
    import numpy as np

    if isinstance(value, np.generic):
        return _finite_or_none(value.item())
    return str(value)


def _fit_with_progress(rec, data) -> None:
    from rich.progress import Progress

    epochs = rec.get_params().get("epochs") or rec.get_params().get("iterations")
    with Progress(console=err, transient=True) as progress:
        bar = progress.add_task(f"fitting {rec.name}", total=epochs)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            progress.update(bar, completed=epoch)

        rec.fit(data, callback=on_epoch)


@app.command()
def recommend(
    user: Annotated[list[str] | None, typer.Option("--user", "-u",
                                                   help="user id (repeatable)")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="number of items (clipped to the "
                                   "catalogue; at most RECSYS_MAX_K, 1000 by default)")] = 10,
    registered_model: str = "recsys",
    alias: Annotated[str | None, typer.Option(help="the alias of the version to use "
                                              "[default: champion-ranking]")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    all_users: Annotated[bool, typer.Option("--all", help="every user, as Parquet under "
                                            "--out (the batch-recommendations flow)")] = False,
    out: Annotated[str | None, typer.Option(help="folder or s3://bucket/prefix for --all")] = None,
) -> None:
    """Top-k items for users, from the registered model's ranking champion (champion-ranking)."""
    from recsys_core.evaluation.evaluate import check_k
    from recsys_core.tracking import mlflow_run, model_store, registry

    check_k(k)
    alias = alias or registry.ROLE_ALIASES[registry.RANKING]
    if all_users or out:
        if not (all_users and out) or user:
            _fail("--all writes every user's list to --out PATH: give both, and no --user")
        from flows.batch import BatchParams, batch_recommendations_flow

        done = batch_recommendations_flow(BatchParams(registered_model=registered_model,
                                                      alias=alias, out=out, k=k))
        console.print(f"{done['rows']:,} rows for {done['users']:,} users of version "
                      f"{done['version']} -> {done['location']}")
        return
    if not user:
        _fail("give --user ID (repeatable), or --all --out PATH for every user")
    mlflow_run.configure()
    ref = registry.get_alias(registered_model, alias)
    if ref is None:
        hint = (" (a rating model such as the default sgd-mf is promoted to champion-ranking only "
                "if it ranks better than popularity; try recsys train --model ease)"
                if alias == registry.ROLE_ALIASES[registry.RANKING] else "")
        _fail(f"no version of {registered_model!r} carries the alias {alias!r}; train one first "
              f"(recsys train){hint}", code=EXIT_FAILURE)
    model = model_store.load_recommender(ref)  # model_state/ arrays and JSON, no unpickling
    k_used = min(k, model.n_items)
    if k_used < k and not as_json:
        _note(f"k={k} is larger than the {model.n_items} item(s) of the model; using k={k_used}")
    recs = model.recommend(user, k_used)
    if as_json:
        sys.stdout.write(recs.to_json(orient="records") + "\n")
        return
    table = Table(title=f"{registered_model}@{alias} (version {ref.version})")
    for col in ("user", "rank", "item", "score"):
        table.add_column(col)
    for row in recs.itertuples(index=False):
        table.add_row(str(row.user), str(row.rank), str(row.item), f"{row.score:.4f}")
    console.print(table)


Role = Literal["ranking", "rating"]


@app.command()
def rollback(
    registered_model: str = "recsys",
    role: Annotated[Role, typer.Option(help="the role whose champion moves back: ranking "
                                       "(champion-ranking, lists) or rating (champion-rating, "
                                       "/predict)")] = "ranking",
) -> None:
    """Move a role's champion alias back to the version it replaced (default: ranking)."""
    from recsys_core.tracking import mlflow_run, registry

    mlflow_run.configure()
    alias = registry.alias_of(role)
    try:
        old, new = registry.rollback(registered_model, alias=alias)
    except RecsysError as exc:
        _fail(str(exc), code=1)
    console.print(f"{registered_model}: {alias} moved from version {old.version} back to "
                  f"version {new.version}")


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False):
    """The available models, the serving roles each can fill, and their hyperparameters.

    A rating model competes for both champion aliases (champion-ranking for lists,
    champion-rating for /predict); a ranking-only model for champion-ranking only.
    """
    from recsys_core.models.registry import describe
    from recsys_core.tracking.registry import RANKING, RATING, ROLE_ALIASES

    info = describe()
    for m in info:
        m["roles"] = {r: ROLE_ALIASES[r] for r in (RANKING, RATING)
                      if r == RANKING or m["predicts_ratings"]}
    if as_json:
        sys.stdout.write(json.dumps(info, default=str) + "\n")
        return
    for m in info:
        roles = ", ".join(f"{r} ({a})" for r, a in m["roles"].items())
        table = Table(title=f"{m['name']}: {m['summary']}\nroles: {roles}",
                      title_justify="left")
        table.add_column("parameter")
        table.add_column("default")
        table.add_column("description")
        for p in m["params"]:
            table.add_row(p["name"], repr(p["default"]), p["description"])
        console.print(table)


from recsys_cli.doctor import doctor  # noqa: E402

app.command("doctor")(doctor)
from recsys_cli.serve import serve  # noqa: E402

app.command("serve")(serve)
from recsys_cli.db import db  # noqa: E402

app.add_typer(db, name="db")
from recsys_cli.report import report  # noqa: E402

app.command("report")(report)
from recsys_cli.tune import tune  # noqa: E402

app.command("tune")(tune)
from recsys_cli.forget import forget  # noqa: E402

app.command("forget")(forget)


if __name__ == "__main__":
    app()
