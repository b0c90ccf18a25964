"""``recsys replay``: train before a cutoff, then replay the next period with fold-in.

The protocol is :mod:`recsys_core.evaluation.replay`: each test interaction is answered before it
joins its user's history, and the metrics come by number of revealed interactions (0, 1-4, 5-19,
20+), for all, warm and cold users. The run is logged to MLflow (metrics, parameters, the table
and the plot) unless ``--no-track``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


def replay(
    source: Annotated[
        str, typer.Option(help="synthetic[:size], a file, s3:// URI or database URL")
    ] = "synthetic",
    synthetic_size: Annotated[str, typer.Option(help="tiny, small, 100k, 1m, 10m, 25m")] = "100k",
    seed: Annotated[int, typer.Option(help="seed of the synthetic data")] = 42,
    columns: Annotated[
        str | None, typer.Option(help="user=..,item=..,rating=..,timestamp=..")
    ] = None,
    model: Annotated[str, typer.Option(help="model name (see: recsys models)")] = "ease",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="model hyperparameter key=value (repeatable)"),
    ] = None,
    test_fraction: Annotated[
        float, typer.Option(help="share of the rows (the latest) replayed after the cutoff")
    ] = 0.2,
    k: Annotated[int, typer.Option("-k", "--k", help="top-k length")] = 10,
    plot: Annotated[
        Path | None,
        typer.Option(help="also write the plot of NDCG@k by revealed interactions to this PNG"),
    ] = None,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="log the replay as an MLflow run")
    ] = True,
    experiment: Annotated[str, typer.Option(help="MLflow experiment")] = "recsys-replay",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Replay the latest --test-fraction of the data against a model trained on the rest.

    Before each test interaction the model answers the user's request with their earlier test
    items folded in, as the service does; the table shows hit rate, NDCG and MRR at k (and the
    rating error of rating models) by how many test interactions the user had revealed.
    """
    from recsys_core.data import collect
    from recsys_core.evaluation.evaluate import check_k
    from recsys_core.evaluation.replay import plot_by_bucket
    from recsys_core.evaluation.replay import replay as run_replay
    from recsys_core.exceptions import ConfigError
    from recsys_core.features import Interactions, SplitConfig, split
    from recsys_core.models.registry import create, parse_params

    check_k(k)
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(
            f"--test-fraction must lie strictly between 0 and 1, got {test_fraction!r}"
        )
    if plot is not None and plot.suffix.lower() != ".png":
        raise ConfigError(
            f"--plot {str(plot)!r} is not a .png path; give a file name ending in .png"
        )
    rec = create(model, parse_params(param))
    collected = collect(source, seed=seed, synthetic_size=synthetic_size, columns=columns)
    config = SplitConfig(strategy="replay", test_fraction=test_fraction)
    parts = split(collected.interactions, config)
    started = time.perf_counter()
    rec.fit(Interactions.from_frame(parts.train, item_meta=collected.items))
    fit_seconds = time.perf_counter() - started
    k_used = min(k, rec.n_items)
    started = time.perf_counter()
    result = run_replay(rec, parts.test, k=k_used)
    replay_seconds = time.perf_counter() - started
    metric = f"ndcg_at_{k_used}"
    run_id = None
    with tempfile.TemporaryDirectory() as tmp:
        picture = plot_by_bucket(result.table, metric, Path(tmp) / "replay_by_revealed.png")
        if plot is not None:
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot.write_bytes(picture.read_bytes())
        if track:
            run_id = _log(
                experiment,
                rec,
                config,
                k_used,
                result,
                picture,
                {"fit_seconds": fit_seconds, "replay_seconds": replay_seconds},
            )
    out: dict[str, Any] = {
        "model": model,
        "params": rec.get_params(),
        "k": k_used,
        "n_train": int(len(parts.train)),
        **result.counts,
        "fit_seconds": round(fit_seconds, 3),
        "replay_seconds": round(replay_seconds, 3),
        "metrics": result.metrics,
        "run_id": run_id,
    }
    if as_json:
        sys.stdout.write(json.dumps(out, default=_jsonable) + "\n")
        return
    _print(result.table, model, out)


def _log(
    experiment: str, model, config, k: int, result, picture: Path, timings: dict[str, float]
) -> str:
    """One MLflow run: parameters, the metrics by bucket, the table and the plot."""
    from recsys_core.tracking import mlflow_run

    mlflow_run.configure()
    run_id = mlflow_run.start_run(
        experiment, run_name=f"replay-{model.name}", tags={"recsys.protocol": "replay"}
    )
    try:
        mlflow_run.log_params(
            run_id,
            {
                "model": {"name": model.name, **model.get_params()},
                "split": config.model_dump(),
                "k": k,
            },
        )
        mlflow_run.log_metrics(
            run_id,
            {**result.metrics, **{f"data/{c}": v for c, v in result.counts.items()}, **timings},
        )
        mlflow_run.log_json(run_id, result.table.to_dict("records"), "replay_by_revealed.json")
        mlflow_run.log_artifact(run_id, picture, "plots")
    except BaseException:
        mlflow_run.end_run(run_id, "FAILED")
        raise
    mlflow_run.end_run(run_id)
    return run_id


def _print(table_frame, model: str, out: dict) -> None:
    console = Console()
    k = out["k"]
    title = (
        f"replay of {out['test_rows']:,} interactions of {out['test_users']:,} users "
        f"({out['cold_users']:,} cold), {model}, k={k}"
    )
    table = Table(title=title, title_justify="left")
    columns = [
        "population",
        "revealed",
        "n",
        "users",
        f"hit_rate_at_{k}",
        f"ndcg_at_{k}",
        f"mrr_at_{k}",
    ] + (["rmse", "mae"] if "rmse" in table_frame.columns else [])
    for name in columns:
        table.add_column(name, justify="left" if name in ("population", "revealed") else "right")
    for rec in table_frame.to_dict("records"):
        if rec["n"] == 0:
            continue
        cells = [rec["population"], rec["bucket"], f"{rec['n']:,}", f"{rec['users']:,}"]
        cells += [f"{rec[c]:.4f}" for c in columns[4:]]
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"fit {out['fit_seconds']:.1f} s, replay {out['replay_seconds']:.1f} s"
        + (f"; MLflow run {out['run_id']}" if out["run_id"] else "")
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
