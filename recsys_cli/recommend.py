"""``recsys recommend``: top-k lists from the ranking champion, for some users or all."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from recsys_cli.console import EXIT_FAILURE, console, fail, note


def recommend(
    user: Annotated[
        list[str] | None, typer.Option("--user", "-u", help="user id (repeatable)")
    ] = None,
    k: Annotated[
        int,
        typer.Option(
            "-k",
            "--k",
            help="number of items (clipped to the "
            "catalogue; at most RECSYS_MAX_K, 1000 by default)",
        ),
    ] = 10,
    registered_model: str = "recsys",
    alias: Annotated[
        str | None, typer.Option(help="the alias of the version to use [default: champion-ranking]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="why each item: a sentence naming the user's items (by title when "
            "the training data had item metadata), and their weights",
        ),
    ] = False,
    all_users: Annotated[
        bool,
        typer.Option(
            "--all", help="every user, as Parquet under --out (the batch-recommendations flow)"
        ),
    ] = False,
    out: Annotated[str | None, typer.Option(help="folder or s3://bucket/prefix for --all")] = None,
) -> None:
    """Top-k items for users, from the registered model's ranking champion (champion-ranking)."""
    from recsys_core.evaluation.evaluate import check_k
    from recsys_core.tracking import mlflow_run, model_store, registry

    check_k(k)
    alias = alias or registry.ROLE_ALIASES[registry.RANKING]
    if all_users or out:
        if not (all_users and out) or user:
            fail("--all writes every user's list to --out PATH: give both, and no --user")
        from flows.batch import BatchParams, batch_recommendations_flow

        done = batch_recommendations_flow(
            BatchParams(registered_model=registered_model, alias=alias, out=out, k=k)
        )
        console.print(
            f"{done['rows']:,} rows for {done['users']:,} users of version "
            f"{done['version']} -> {done['location']}"
        )
        return
    if not user:
        fail("give --user ID (repeatable), or --all --out PATH for every user")
    mlflow_run.configure()
    ref = registry.get_alias(registered_model, alias)
    if ref is None:
        hint = (
            " (a rating model such as the default sgd-mf is promoted to champion-ranking only "
            "if it ranks better than popularity; try recsys train --model ease)"
            if alias == registry.ROLE_ALIASES[registry.RANKING]
            else ""
        )
        fail(
            f"no version of {registered_model!r} carries the alias {alias!r}; train one first "
            f"(recsys train){hint}",
            code=EXIT_FAILURE,
        )
    model = model_store.load_recommender(ref)  # model_state/ arrays and JSON, no unpickling
    k_used = min(k, model.n_items)
    if k_used < k and not as_json:
        note(f"k={k} is larger than the {model.n_items} item(s) of the model; using k={k_used}")
    if explain:
        _print_explained(
            model, user, k_used, as_json, f"{registered_model}@{alias} (version {ref.version})"
        )
        return
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


def _print_explained(model, users: list[str], k: int, as_json: bool, title: str) -> None:
    """The lists with their explanations: the sentence in words, the numbers in fields."""
    import json

    from recsys_core.serving import Scorer
    from recsys_core.serving.explain import because

    scorer = Scorer(model)
    rows = []
    for user in users:
        rec = scorer.recommend(user, k, explain=True)
        for rank, item in enumerate(rec.items, start=1):
            rows.append(
                {
                    "user": user,
                    "rank": rank,
                    "item": item.item_id,
                    "title": scorer.item_title(item.item_id),
                    "score": item.score,
                    "because": because(item.reasons),
                    "fallback": rec.fallback,
                    "reasons": [
                        {"item": r.item_id, "title": r.title, "weight": r.weight}
                        for r in item.reasons or ()
                    ],
                }
            )
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title=title)
    for col in ("user", "rank", "item", "score", "because"):
        table.add_column(col)
    for row in rows:
        name = f"{row['title']} ({row['item']})" if row["title"] else str(row["item"])
        table.add_row(
            str(row["user"]),
            str(row["rank"]),
            name,
            f"{row['score']:.4f}",
            str(row["because"] or ""),
        )
    console.print(table)
