"""``recsys tune``: an Optuna study over one model's hyperparameters (the tune flow)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recsys_cli.console import EXIT_BAD_INPUT, fail
from recsys_cli.options import (
    ColumnsOpt,
    DuplicatesOpt,
    RatingMaxOpt,
    RatingMinOpt,
    SeedOpt,
    SetOpt,
    SinceOpt,
    SourceOpt,
    SyntheticSizeOpt,
    assign,
    data_section,
    drop_unset,
    validated,
)
from recsys_cli.prefect_console import quiet_prefect
from recsys_core.exceptions import RecsysError


def tune(
    model: Annotated[str, typer.Option(help="model to tune (see: recsys models)")] = "sgd-mf",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="hyperparameter kept fixed, key=value (repeatable)"),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            help='JSON ranges replacing the default space, e.g. \'{"reg": {"kind": "float", '
            '"low": 0.01, "high": 1, "log": true}}\''
        ),
    ] = None,
    trials: Annotated[int, typer.Option(min=1, help="trials to add to the study")] = 20,
    parallel: Annotated[int, typer.Option(min=1, help="trials run at the same time")] = 2,
    study: Annotated[
        str | None,
        typer.Option(help="study name (default: tune-<model>); an existing study resumes"),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL (default: $RECSYS_TUNE_STORAGE, else sqlite in .recsys)"
        ),
    ] = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    synthetic_size: SyntheticSizeOpt = None,
    seed: SeedOpt = None,
    columns: ColumnsOpt = None,
    duplicates: DuplicatesOpt = None,
    rating_min: RatingMinOpt = None,
    rating_max: RatingMaxOpt = None,
    metric: Annotated[
        str, typer.Option(help="metric to optimize (auto: rmse, or ndcg_at_k for rankers)")
    ] = "auto",
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="top-k length")] = 10,
    experiment: Annotated[str, typer.Option(help="MLflow experiment")] = "recsys-tuning",
    set_: SetOpt = None,
) -> None:
    """Search a model's hyperparameters; print the best and the command that trains them.

    Nothing is registered or promoted: train the best parameters with `recsys train`, whose
    gate decides. Trials run on a local Dask cluster (RECSYS_DASK_WORKERS, default 2) or on
    the cluster at RECSYS_DASK_ADDRESS.
    """
    from recsys_core.models.registry import parse_params

    raw: dict = {
        "model": {"name": model},
        "n_trials": trials,
        "parallel": parallel,
        "metric": metric,
        "k": k,
        "experiment": experiment,
        "data": drop_unset(
            data_section(
                source=source,
                since=since,
                synthetic_size=synthetic_size,
                seed=seed,
                columns=columns,
                duplicates=duplicates,
                rating_min=rating_min,
                rating_max=rating_max,
            )
        ),
    }
    if seed is not None:
        raw["split"] = {"seed": seed}
    try:
        raw["model"]["params"] = parse_params(param)
        if space:
            raw["space"] = json.loads(space)
        for assignment in set_ or []:
            assign(raw, assignment)
    except (RecsysError, json.JSONDecodeError) as exc:
        fail(f"bad option: {exc}", EXIT_BAD_INPUT)
    raw.update({key: v for key, v in (("study", study), ("storage", storage)) if v})
    quiet_prefect()
    from flows.tune import TuneParams, tune_flow

    params = validated(TuneParams, raw)
    started = time.perf_counter()
    out = tune_flow(params)
    table = Table(
        title=f"study {out['study']}: best of {out['trials_complete']} trial(s) "
        f"({time.perf_counter() - started:.0f} s)"
    )
    table.add_column("hyperparameter")
    table.add_column("best", justify="right")
    for name, value in out["best"]["params"].items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row(f"[bold]{out['metric']}[/]", f"[bold]{out['best_value']:.4f}[/]")
    console = Console()
    console.print(table)
    console.print(f"MLflow run {out['run_id']}" + (f": {out['run_url']}" if out["run_url"] else ""))
    console.print(f"train and gate it with:\n  {out['train_command']}", soft_wrap=True)
