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
# one bar per downloaded folder (registering a model, forgetting a user) would bury the output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import gc
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from dotenv import load_dotenv
from typer.core import TyperGroup

from recsys_cli.console import err, error_message, exit_code, help_of, print_error
from recsys_cli.prefect_console import console_on_this_stderr
from recsys_core.exceptions import RecsysError
from recsys_core.redaction import redact
from recsys_core.settings import get_settings

load_dotenv(Path.cwd() / ".env", override=False)

# MLflow imports PySpark wherever it is installed (the spark extra), and PySpark warns on import
# that it does not fully support pandas 3: recsys's Spark path is tested with the pandas it pins
# (tests/recsys_core/spark), and the warning would otherwise open every training run's output
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)


class RecsysGroup(TyperGroup):
    """Turns any exception a command lets through into one ``error:`` line and an exit code."""

    def invoke(self, ctx):
        console_on_this_stderr()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors (exit 2): typer prints them with the usage line
        except Exception as exc:
            if ctx.params.get("debug") or get_settings().cli.debug:
                err.print(
                    redact("".join(traceback.format_exception(exc))),
                    end="",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
            hint = "" if isinstance(exc, RecsysError) else " (--debug shows the traceback)"
            print_error(error_message(exc) + hint)
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
    debug: Annotated[
        bool, typer.Option("--debug", help="print the traceback of an error (also RECSYS_DEBUG=1)")
    ] = False,
) -> None:
    """Options of every command."""


# one module per command, registered in the order of `recsys --help`
from recsys_cli.db import db  # noqa: E402
from recsys_cli.doctor import doctor  # noqa: E402
from recsys_cli.evaluate import evaluate  # noqa: E402
from recsys_cli.forget import forget  # noqa: E402
from recsys_cli.keys import keys  # noqa: E402
from recsys_cli.models import models  # noqa: E402
from recsys_cli.recommend import recommend  # noqa: E402
from recsys_cli.replay import replay  # noqa: E402
from recsys_cli.report import report  # noqa: E402
from recsys_cli.rollback import rollback  # noqa: E402
from recsys_cli.serve import serve  # noqa: E402
from recsys_cli.train import train  # noqa: E402
from recsys_cli.tune import tune  # noqa: E402

# each paragraph of a command's help on one line: the terminal wraps it at its width
first: tuple[Callable[..., Any], ...] = (
    train,
    evaluate,
    recommend,
    rollback,
    models,
    doctor,
    serve,
)
for command in first:
    app.command(help=help_of(command))(command)
app.add_typer(db, name="db")
app.add_typer(keys, name="keys")
last: tuple[Callable[..., Any], ...] = (report, tune, forget, replay)
for command in last:
    app.command(help=help_of(command))(command)


def run() -> None:
    """The ``recsys`` command: ``app`` in a process of its own, which ends when it returns."""
    try:
        app()
    finally:
        # the process is about to end: without this, the interpreter's last collections free,
        # one by one, the objects of every module the command loaded (0.3 to 0.5 s of CPU after
        # a fit: pandas, numba, scipy); the system frees them at once with the process. Exit
        # handlers and flushes still run. Not in ``app``: a program that calls it (the tests)
        # goes on, and its garbage must stay collectable.
        gc.freeze()


if __name__ == "__main__":
    run()
