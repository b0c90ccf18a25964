"""``recsys serve``: the recommendation service on uvicorn (settings: ``RECSYS_SERVE_*``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
) -> None:
    """Serve recommendations over HTTP from the registry's champions (hot reloaded).

    What is served comes from RECSYS_SERVE_REGISTERED_MODEL (default recsys),
    RECSYS_SERVE_RANKING_ALIAS (default champion-ranking: lists) and RECSYS_SERVE_RATING_ALIAS
    (default champion-rating: /predict) and
    MLFLOW_TRACKING_URI; see recsys_service/settings.py for every setting.
    """
    import pydantic
    import uvicorn

    from recsys_service.settings import ServiceSettings

    try:
        settings = ServiceSettings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"RECSYS_SERVE_{'_'.join(map(str, e['loc'])).upper()}="
                             f"{e.get('input')!r}: {e['msg']}" for e in exc.errors())
        Console(stderr=True).print(f"[bold red]error:[/] invalid service settings: {problems}",
                                   highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Console(stderr=True).print(
        f"serving {settings.registered_model!r} (ranking alias {settings.ranking_alias!r}, "
        f"rating alias {settings.rating_alias!r}) on http://{host}:{port} with {workers} "
        "worker(s)", highlight=False)
    # the factory string lets every worker process build its own app, poller and metrics
    uvicorn.run("recsys_service.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info", access_log=False)
