"""``recsys``: train, evaluate, recommend, roll back, list models, check the setup."""

from __future__ import annotations

import os

# BLAS threads pinned before numpy loads; the models do their own threading
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from dotenv import load_dotenv  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from recsys_core.exceptions import RecsysError  # noqa: E402

load_dotenv(Path.cwd() / ".env", override=False)

app = typer.Typer(
    name="recsys",
    help="Train, check and ship recommender models (Prefect flows, MLflow registry).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="model hyperparameter key=value (repeatable)"),
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def train(
    source: Annotated[str, typer.Option(help="synthetic[:size], movielens-100k..., a file, s3://")]
    = "synthetic",
    model: Annotated[str, typer.Option(help="model name (see: recsys models)")] = "sgd-mf",
    param: ParamOpt = None,
    synthetic_size: Annotated[str, typer.Option(help="tiny, small, 100k, 1m, 10m")] = "100k",
    seed: int = 42,
    columns: Annotated[str | None, typer.Option(help="user=..,item=..,rating=..,timestamp=..")]
    = None,
    split: Annotated[str, typer.Option(help="time, random or last_k")] = "time",
    k: Annotated[int, typer.Option("-k", "--k", help="top-k length")] = 10,
    quarantine: Annotated[bool, typer.Option(help="set invalid rows aside instead of failing")]
    = False,
    registered_model: str = "recsys",
    experiment: str = "recsys-training",
) -> None:
    """Run the training flow: collect, validate, features, train, evaluate, gate, promote."""
    from recsys_core.models.registry import create, parse_params

    try:
        if k < 1:
            raise RecsysError(f"k must be a positive integer, got {k}")
        params = parse_params(param)
        create(model, params)  # unknown model or parameter: fail before any flow starts
    except RecsysError as exc:
        _fail(str(exc))
    from flows.training import TrainingParams, training_flow

    try:
        tp = TrainingParams(
            source=source, model=model, model_params=params, synthetic_size=synthetic_size,
            seed=seed, columns=columns, split=split, k=k, quarantine=quarantine,
            registered_model=registered_model, experiment=experiment,
        )
    except Exception as exc:  # pydantic ValidationError
        _fail(str(exc))
    started = time.perf_counter()
    with console.status(f"training {model} on {source} ..."):
        try:
            outcome = training_flow(tp)
        except RecsysError as exc:
            _fail(str(exc), code=1)
    _print_outcome(outcome, time.perf_counter() - started)


def _print_outcome(outcome: dict, seconds: float) -> None:
    table = Table(title=f"run {outcome['run_id']} ({seconds:.0f} s)")
    table.add_column("metric")
    table.add_column("challenger", justify="right")
    table.add_column("champion", justify="right")
    table.add_column("baseline", justify="right")
    champ = outcome.get("champion") or {}
    base = outcome.get("baseline") or {}
    for name, value in outcome["metrics"].items():
        table.add_row(name, f"{value:.4f}", _f(champ.get(name)), _f(base.get(name)))
    console.print(table)
    style = "green" if outcome["promoted"] else "yellow"
    console.print(f"[{style}]{outcome['gate']}[/]", highlight=False)
    verdict = "promoted to champion" if outcome["promoted"] else "kept as challenger"
    console.print(f"model version {outcome['version']}: {verdict}. Tracking: "
                  f"{outcome['tracking_uri']}")


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


@app.command()
def evaluate(
    train_file: Annotated[str, typer.Option("--train", help="training file or s3:// URI")],
    test_file: Annotated[str, typer.Option("--test", help="test file or s3:// URI")],
    model: Annotated[str, typer.Option(help="model name")] = "sgd-mf",
    param: ParamOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", help="top-k length")] = 10,
    columns: Annotated[str | None, typer.Option(help="column mapping of both files")] = None,
    predictions_out: Annotated[Path | None, typer.Option(help="CSV of test predictions")] = None,
    recommendations_out: Annotated[Path | None, typer.Option(help="CSV of top-k lists")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Fit a model on --train and score it on --test (no flow, no tracking)."""
    from recsys_core.data.files import parse_column_map, read_location
    from recsys_core.evaluation import evaluate as run_eval
    from recsys_core.features import Interactions
    from recsys_core.models.registry import create, parse_params

    try:
        if k < 1:
            raise RecsysError(f"k must be a positive integer, got {k}")
        rec = create(model, parse_params(param))
        mapping = parse_column_map(columns)
        train_df = read_location(train_file, mapping)
        test_df = read_location(test_file, mapping)
        if train_df.empty:
            raise RecsysError(f"{str(train_file)!r} has no rows")
        if test_df.empty:
            raise RecsysError(f"{str(test_file)!r} has no rows")
        data = Interactions.from_frame(train_df)
        started = time.perf_counter()
        if as_json:
            rec.fit(data)
        else:
            _fit_with_progress(rec, data)
        fit_seconds = time.perf_counter() - started
        result = run_eval(rec, train_df, test_df, k=k, keep_predictions=predictions_out is not None,
                          keep_recommendations=recommendations_out is not None)
    except RecsysError as exc:
        _fail(str(exc))
    out = {
        "model": model,
        "params": rec.get_params(),
        **result.metrics,
        "fit_seconds": round(fit_seconds, 4),
        "k": k,
        "n_train": int(len(train_df)),
        "n_test": int(len(test_df)),
        "cold_users": result.counts["cold_users"],
        "cold_items": result.counts["cold_items"],
        "cold_user_rows": result.counts["cold_user_rows"],
        "cold_item_rows": result.counts["cold_item_rows"],
    }
    if predictions_out is not None:
        if result.predictions is None:
            _fail(f"model {model!r} does not predict ratings; --predictions-out needs a rating "
                  "model")
        result.predictions.to_csv(predictions_out, index=False)
    if recommendations_out is not None:
        result.recommendations.to_csv(recommendations_out, index=False)
    if as_json:
        sys.stdout.write(json.dumps(out) + "\n")
        return
    table = Table(title=f"{model} ({fit_seconds:.2f} s fit)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in out.items():
        if isinstance(value, float | int) and key not in ("k",):
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


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
    k: Annotated[int, typer.Option("-k", "--k", help="number of items")] = 10,
    registered_model: str = "recsys",
    alias: str = "champion",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    all_users: Annotated[bool, typer.Option("--all", help="every user, as Parquet under "
                                            "--out (the batch-recommendations flow)")] = False,
    out: Annotated[str | None, typer.Option(help="folder or s3://bucket/prefix for --all")] = None,
) -> None:
    """Top-k items for users, from the registered model's champion."""
    from recsys_core.tracking import mlflow_run, pyfunc

    if k < 1:
        _fail(f"k must be a positive integer, got {k}")
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
    try:
        model = pyfunc.load_recommender(f"models:/{registered_model}@{alias}")
    except Exception as exc:  # noqa: BLE001 - MlflowException and I/O errors
        _fail(f"cannot load models:/{registered_model}@{alias}: {exc}. Train one first "
              "(recsys train).", code=1)
    recs = model.recommend(user, k)
    if as_json:
        sys.stdout.write(recs.to_json(orient="records") + "\n")
        return
    table = Table(title=f"{registered_model}@{alias}")
    for col in ("user", "rank", "item", "score"):
        table.add_column(col)
    for row in recs.itertuples(index=False):
        table.add_row(str(row.user), str(row.rank), str(row.item), f"{row.score:.4f}")
    console.print(table)


@app.command()
def rollback(registered_model: str = "recsys") -> None:
    """Move the champion alias back to the version it replaced."""
    from recsys_core.tracking import mlflow_run, registry

    mlflow_run.configure()
    try:
        old, new = registry.rollback(registered_model)
    except RecsysError as exc:
        _fail(str(exc), code=1)
    console.print(f"{registered_model}: champion moved from version {old.version} back to "
                  f"version {new.version}")


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False):
    """The available models and their hyperparameters (with defaults)."""
    from recsys_core.models.registry import describe

    info = describe()
    if as_json:
        sys.stdout.write(json.dumps(info, default=str) + "\n")
        return
    for m in info:
        table = Table(title=f"{m['name']}: {m['summary']}", title_justify="left")
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


if __name__ == "__main__":
    app()
