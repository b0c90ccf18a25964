"""``recsys serve``: the recommendation service on uvicorn (settings: ``RECSYS_SERVE_*``)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Annotated

import typer
from rich.console import Console


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="answer without API keys (every caller gets every scope); only on a "
            "loopback address",
        ),
    ] = False,
) -> None:
    """Serve recommendations over HTTP from the registry's champions (hot reloaded).

    What is served comes from RECSYS_SERVE_REGISTERED_MODEL (default recsys),
    RECSYS_SERVE_RANKING_ALIAS (default champion-ranking: lists) and RECSYS_SERVE_RATING_ALIAS
    (default champion-rating: /predict) and
    MLFLOW_TRACKING_URI; see recsys_service/settings.py for every setting. Every route but
    /health and /ready needs an API key (recsys keys create).
    """

    from recsys_core.exceptions import MissingExtraError
    from recsys_core.extras import require

    try:
        for module in ("fastapi_offline", "orjson", "prometheus_client", "uvicorn"):
            require(module, "service")
    except MissingExtraError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    from recsys_core.exceptions import ConfigError
    from recsys_core.settings import get_settings, reset_settings
    from recsys_service import workers as workers_module

    try:
        settings = get_settings().serving
    except ConfigError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    auth = settings.auth and not no_auth
    if not auth:
        if not is_loopback(host):
            Console(stderr=True).print(
                f"[bold red]error:[/] --no-auth (or RECSYS_SERVE_AUTH=false) answers anyone "
                f"without a key, so it is refused on --host {host!r}: use 127.0.0.1 (or ::1), "
                "or create keys with `recsys keys create`",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2)
        os.environ["RECSYS_SERVE_AUTH"] = "false"  # for every worker's settings tree
        reset_settings()  # and this process's
        settings = get_settings().serving
        Console(stderr=True).print(
            "[yellow]warning:[/] no API keys are checked (--no-auth): "
            "any local process may call every route",
            highlight=False,
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    Console(stderr=True).print(
        f"serving {settings.registered_model!r} (ranking alias {settings.ranking_alias!r}, "
        f"rating alias {settings.rating_alias!r}) on http://{host}:{port} with {workers} "
        "worker(s)",
        highlight=False,
    )
    # the service's log is for operators: no progress bar per model file it downloads
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _prepare_embedded_events(settings.events_url)
    if auth:
        from recsys_core.events.engine import events_url
        from recsys_core.events.keys import pepper

        pepper(settings.events_url or events_url())  # a missing one stops here, said once
    metrics_dir = None
    if workers > 1:
        from recsys_core.redaction import redact
        from recsys_service.live_models import prepare_registry
        from recsys_service.metrics import MULTIPROC_DIR

        # one process creates the embedded registry database, before the workers look at it
        try:
            prepare_registry(settings.tracking_uri)
        except Exception as exc:
            logging.getLogger(__name__).warning(
                "the model registry could not be prepared before starting the workers: %s",
                redact(str(exc)),
            )
        if not os.environ.get(MULTIPROC_DIR):
            # the workers' metrics meet in a fresh folder (stale samples would be counted)
            metrics_dir = tempfile.mkdtemp(prefix="recsys-metrics-")
            os.environ[MULTIPROC_DIR] = metrics_dir
    try:
        # the factory string lets every worker process build its own app, poller and metrics
        workers_module.run(
            "recsys_service.app:create_app",
            host=host,
            port=port,
            workers=workers,
            reuse_port=settings.reuse_port,
            log_level="info",
            access_log=False,
            settings=settings,
        )
    finally:
        if metrics_dir is not None:
            os.environ.pop(MULTIPROC_DIR, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback address only (never 0.0.0.0, ::, or a name other
    than localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _prepare_embedded_events(url: str | None) -> None:
    """Create or migrate the tables of an embedded SQLite event store, once, before the
    workers start (as MLflow does with its embedded store): the service records every list it
    serves there. A server database (PostgreSQL) is migrated by its owner: `recsys db upgrade`.
    """
    from recsys_core.events.engine import events_url
    from recsys_core.events.migrate import upgrade
    from recsys_core.redaction import redact

    url = url or events_url()
    if not url.startswith("sqlite"):
        return
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # one line from recsys_core.events.migrate says it
    try:
        upgrade(url)
    except Exception as exc:
        logging.getLogger(__name__).warning(
            "the embedded event store %s could not be prepared: %s", url, redact(str(exc))
        )
    finally:
        alembic_log.setLevel(level)
