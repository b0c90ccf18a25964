"""``recsys evaluate``: fit a model on one file and score it on another (no flow, no tracking),
locally or in Spark."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from recsys_cli.console import console, err, note
from recsys_cli.options import ParamOpt
from recsys_core.exceptions import ConfigError, DataError
from recsys_core.redaction import redact

Duplicates = Literal["latest", "mean", "refuse"]
Engine = Literal["auto", "local", "spark"]
Metrics = Literal["all", "rating"]


def evaluate(
    train_file: Annotated[str, typer.Option("--train", help="training file or s3:// URI")],
    test_file: Annotated[str, typer.Option("--test", help="test file or s3:// URI")],
    model: Annotated[str, typer.Option(help="model name")] = "sgd-mf",
    param: ParamOpt = None,
    k: Annotated[
        int,
        typer.Option(
            "-k",
            "--k",
            help="top-k length (clipped to the catalogue; at most RECSYS_MAX_K, 1000 by default)",
        ),
    ] = 10,
    columns: Annotated[str | None, typer.Option(help="column mapping of both files")] = None,
    duplicates: Annotated[
        Duplicates,
        typer.Option(
            help="a (user, item) pair rated more than once: keep the latest rating, the mean, or "
            "refuse the file"
        ),
    ] = "latest",
    rating_min: Annotated[float, typer.Option(help="lowest valid rating")] = 1.0,
    rating_max: Annotated[float, typer.Option(help="highest valid rating")] = 5.0,
    predictions_out: Annotated[Path | None, typer.Option(help="CSV of test predictions")] = None,
    recommendations_out: Annotated[Path | None, typer.Option(help="CSV of top-k lists")] = None,
    metrics: Annotated[
        Metrics,
        typer.Option(
            help="all: the rating metrics (rating models) and the top-k ranking metrics; rating: "
            "RMSE and MAE only, no top-k list is computed (rating models)"
        ),
    ] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            help="what scores the model: local; spark (Spark reads both Parquet files, local or "
            "s3://, and computes the metrics; factor models); auto: spark for the Spark models "
            "when both files are Parquet and no CSV output is asked, local otherwise"
        ),
    ] = "auto",
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
    from recsys_core.models.kernel_cache import load_kernels_without_compiler
    from recsys_core.models.registry import create, parse_params

    # one process, one fit: numba's cached kernels load without readying its compiler (0.3-0.5 s)
    load_kernels_without_compiler()
    # everything that can be judged without the data is judged before reading or fitting
    check_k(k)
    used = _evaluation_engine(
        engine,
        model,
        (train_file, test_file),
        predictions_out is not None or recommendations_out is not None,
        quiet=as_json,
    )
    if not rating_min <= rating_max or not (
        math.isfinite(rating_min) and math.isfinite(rating_max)
    ):
        raise ConfigError(
            f"the rating scale [{rating_min!r}, {rating_max!r}] is not a finite "
            "interval; give --rating-min <= --rating-max"
        )
    rec = create(model, parse_params(param))
    if metrics == "rating" and not rec.predicts_ratings:
        raise ConfigError(
            f"model {model!r} does not predict ratings: --metrics rating would report nothing; "
            "use --metrics all, or a rating model (recsys models lists them)"
        )
    if metrics == "rating" and recommendations_out is not None:
        raise ConfigError(
            "--recommendations-out writes top-k lists, which --metrics rating does not compute; "
            "use --metrics all"
        )
    if predictions_out is not None and not rec.predicts_ratings:
        raise ConfigError(
            f"model {model!r} does not predict ratings; --predictions-out needs a "
            "rating model (recsys models lists them)"
        )
    check_output_path(predictions_out, "--predictions-out")
    check_output_path(recommendations_out, "--recommendations-out")
    if (
        predictions_out is not None
        and recommendations_out is not None
        and (predictions_out.resolve() == recommendations_out.resolve())
    ):
        raise ConfigError(
            "--predictions-out and --recommendations-out name the same file; give two paths"
        )

    frames = {}
    # with the spark engine, the test file is read by Spark only
    reads = [("train", train_file)] + ([("test", test_file)] if used == "local" else [])
    for role, location in reads:
        # the ids as categoricals: the duplicates check, the vocabularies and the evaluation
        # read their codes instead of hashing every row's text again
        collected = collect(
            location,
            columns=columns,
            duplicates=duplicates,
            rating_scale=(rating_min, rating_max),
            categorical_ids=True,
        )
        frame = collected.interactions
        if frame.empty:
            raise DataError(f"{redact(location)!r} has no rows")
        check_rows(frame, (rating_min, rating_max), origin=repr(redact(location)))
        removed = collected.extra.get("duplicates_removed", 0)
        if removed and not as_json:
            note(
                f"{removed} repeated (user, item) row(s) of the {role} file resolved by the "
                f"duplicates policy {duplicates!r}"
            )
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
        note(
            f"k={k} is larger than the {rec.n_items} item(s) of the training data; using k={k_used}"
        )
    if used == "spark":
        result = _evaluate_in_spark(
            rec,
            train_file,
            test_file,
            columns=columns,
            k=k_used,
            rating_scale=(rating_min, rating_max),
        )
    else:
        result = run_eval(
            rec,
            train_df,
            frames["test"],
            k=k_used,
            keep_predictions=predictions_out is not None,
            keep_recommendations=recommendations_out is not None,
            ranking=metrics == "all",
        )
    if metrics == "rating":  # the spark engine computes every metric: the rating ones are kept
        result.metrics = {
            name: value for name, value in result.metrics.items() if not _is_ranking(name)
        }
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
    console.print(
        population_table(out, title=f"{model} ({fit_seconds:.2f} s fit, {used} evaluation)")
    )
    cold_items = ""
    if out.get("cold_items/rows"):
        cold_items = (
            f"; cold items (never in training): {out['cold_items/items']:,} on "
            f"{out['cold_items/rows']:,} rows ({out['cold_items/share']:.1%})"
            + (
                f", rmse {out['cold_items/rmse']:.4f}"
                if out.get("cold_items/rmse") is not None
                else ""
            )
        )
    console.print(
        f"warm: test users with training rows; cold: without ('-': none of them)"
        f"{cold_items}. "
        f"{out['n_train']:,} training rows, k={k_used}",
        highlight=False,
        soft_wrap=True,
    )


def population_table(out: dict[str, Any], title: str) -> Table:
    """Each metric for the warm users, the cold users and all of them, side by side (a column
    each: a terminal's width holds three), the populations' sizes first; ``out`` holds the plain
    names (all users) and ``warm/...``, ``cold/...`` beside them."""
    # the evaluation's own metrics (not the run's counts), in their order of evaluation
    metrics = [
        name for name in out if name in ("rmse", "mae") or ("_at_" in name and "/" not in name)
    ]
    table = Table(title=title)
    table.add_column("test users")
    for population in ("warm", "cold", "all"):
        table.add_column(population, justify="right")
    for size in ("users", "rows"):
        table.add_row(size, *(f"{out.get(f'{p}/{size}', 0):,}" for p in ("warm", "cold", "all")))
    for metric in metrics:
        values = (out.get(f"warm/{metric}"), out.get(f"cold/{metric}"), out.get(metric))
        table.add_row(metric, *("-" if v is None else f"{v:.4f}" for v in values))
    return table


def _is_parquet(location: str) -> bool:
    path = location.rstrip("/")
    return path.lower().endswith((".parquet", ".pq")) or ("://" not in path and Path(path).is_dir())


def _evaluation_engine(
    engine: str, model: str, files: tuple[str, str], csv_out: bool, quiet: bool
) -> str:
    """The engine of ``recsys evaluate``: the spark engine reads Parquet and writes no CSV (it
    collects no rows); ``auto`` falls back to local, and says why, where spark cannot run."""
    from recsys_core.spark.engine import resolve_engine

    used = resolve_engine(engine, model)
    if used == "local":
        return used
    not_parquet = [redact(f) for f in files if not _is_parquet(f)]
    why = (
        f"{', '.join(map(repr, not_parquet))} is not Parquet (.parquet, .pq or a folder of them)"
        if not_parquet
        else "--predictions-out/--recommendations-out need every row on this machine"
        if csv_out
        else ""
    )
    if not why:
        return used
    if engine == "spark":
        raise ConfigError(
            f"--engine spark reads both files with Spark and collects no rows: "
            f"{why}; convert the files to Parquet, drop the CSV outputs, or use "
            "--engine local"
        )
    if not quiet:
        note(f"{model!r} is scored locally, not in Spark: {why}")
    return "local"


def _evaluate_in_spark(
    rec: Any,
    train_file: str,
    test_file: str,
    *,
    columns: str | None,
    k: int,
    rating_scale: tuple[float, float],
) -> Any:
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
        raise ConfigError(
            f"{option} {shown!r} is a folder; give a file path such as {str(path / 'out.csv')!r}"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ConfigError(
            f"{option} {shown!r}: the folder {str(parent)!r} does not exist; create "
            "it first or give another path"
        )
    if not parent.is_dir():
        raise ConfigError(f"{option} {shown!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(
            f"{option} {shown!r} cannot be written (permission denied); give a "
            "path you can write to"
        )


def _is_ranking(metric: str) -> bool:
    """A top-k metric (``ndcg_at_10``, ``warm/coverage_at_10``, ...)."""
    return "_at_" in metric


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
