"""``recsys train``: the training flow, from options to the run's outcome table."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from recsys_cli.console import EXIT_BAD_INPUT, EXIT_REFUSED, console, fail
from recsys_cli.options import (
    ColumnsOpt,
    DuplicatesOpt,
    ParamOpt,
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


def train(
    source: SourceOpt = None,
    since: SinceOpt = None,
    model: Annotated[
        str | None, typer.Option(help="model name (see: recsys models) [default: sgd-mf]")
    ] = None,
    param: ParamOpt = None,
    synthetic_size: SyntheticSizeOpt = None,
    seed: SeedOpt = None,
    columns: ColumnsOpt = None,
    duplicates: DuplicatesOpt = None,
    rating_min: RatingMinOpt = None,
    rating_max: RatingMaxOpt = None,
    split: Annotated[
        str | None, typer.Option(help="time, random or last_k [default: time]")
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option(help="share of rows in test [default: 0.2]")
    ] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="top-k length [default: 10]")] = None,
    quarantine: Annotated[
        bool | None,
        typer.Option(
            "--quarantine/--no-quarantine", help="set invalid rows aside instead of failing"
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="serving role to compete for: ranking or rating (repeatable) "
            "[default: every role the model can fill]",
        ),
    ] = None,
    min_improvement: Annotated[
        float | None,
        typer.Option(
            help="gain over the champion every role's gate requires [default: 0.001]; one role: "
            "--set gate.ranking.min_improvement=..."
        ),
    ] = None,
    refit_full: Annotated[
        bool | None,
        typer.Option(
            "--refit-full/--no-refit-full",
            help="serve a refit on all rows of the split once a gate passed [default: on]",
        ),
    ] = None,
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
        "data": data_section(
            source=source,
            since=since,
            synthetic_size=synthetic_size,
            seed=seed,
            columns=columns,
            duplicates=duplicates,
            rating_min=rating_min,
            rating_max=rating_max,
        ),
        "validation": {"quarantine": quarantine},
        "split": {"strategy": split, "test_fraction": test_fraction, "seed": seed},
        "gate": {r: {"min_improvement": min_improvement} for r in ("ranking", "rating")},
        "roles": role or None,
        "refit_full": refit_full,
        "k": k,
        "registered_model": registered_model,
        "experiment": experiment,
    }
    try:
        raw = drop_unset(given)
        raw["model"] = (
            {"name": model, "params": parse_params(param)}
            if model
            else {"params": parse_params(param)}
        )
        for assignment in set_ or []:
            assign(raw, assignment)
    except RecsysError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    quiet_prefect()
    from flows.training import TrainingParams, outcome_of, training_flow

    params = validated(TrainingParams, raw)
    started = time.perf_counter()
    # a failed run raises: the global handler prints one error line with its exit code
    outcome = outcome_of(training_flow(params))
    _print_outcome(outcome, time.perf_counter() - started)
    if not outcome["promoted"]:
        raise typer.Exit(EXIT_REFUSED)


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
    from recsys_core.evaluation.gate import metrics_in_order, populations_line

    # each metric beside its warm and cold figures; the populations' sizes on one line below
    for name in metrics_in_order(outcome["metrics"]):
        table.add_row(name, f"{outcome['metrics'][name]:.4f}", *(_f(c.get(name)) for c in columns))
    console.print(table)
    sizes = populations_line(outcome["metrics"])
    if sizes:
        console.print(sizes, highlight=False, soft_wrap=True)
    for role, o in roles.items():
        console.print(
            f"[bold]{role}[/] ({o['alias']}, {o['primary_metric']} against {o['baseline_name']}):",
            highlight=False,
        )
        for reason in o.get("gate_reasons", []):
            style = "red" if reason.startswith("FAIL") else "green"
            console.print(f"  [{style}]{reason}[/]", highlight=False)
    for role, o in roles.items():
        version = o.get("champion_version")
        if o["verdict"] == "promoted":
            replaced = f" (version {version} is now {role}: replaced)" if version else ""
            console.print(
                f"[bold green]PROMOTED[/] model version {outcome['version']} is "
                f"{o['alias']}{replaced}",
                highlight=False,
            )
        else:
            kept = f"{o['alias']} stays version {version}" if version else f"no {o['alias']}"
            console.print(
                f"[bold yellow]REFUSED[/] ({role}) model version {outcome['version']}; {kept}",
                highlight=False,
            )
    if outcome.get("refit"):
        r = outcome["refit"]
        console.print(
            f"served model refit on all {r['n_ratings']:,} rows of the split "
            f"(data {r['data_digest'][:12]}, {r['seconds']:.1f} s); the judged model "
            "is kept as evaluated_state",
            highlight=False,
        )
    if not outcome["promoted"]:
        console.print(f"exit code {EXIT_REFUSED}: no role promoted", highlight=False)
    if outcome.get("run_url"):
        console.print(f"MLflow: {outcome['run_url']}", highlight=False, soft_wrap=True)
    else:
        console.print(
            f"MLflow: run {outcome['run_id']} in {outcome['tracking_uri']} (browse it with: "
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server --workers 1 --host "
            f"127.0.0.1 --port 5000 --backend-store-uri {outcome['tracking_uri']})",
            highlight=False,
            soft_wrap=True,
        )
    if outcome.get("flow_run_url"):
        console.print(f"Prefect: {outcome['flow_run_url']}", highlight=False, soft_wrap=True)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"
