"""`recsys train` without a flow run: settings from flags and --set, Prefect's console quiet."""

import io
import logging
import sys

from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_cli.prefect_console import console_on_this_stderr, quiet_prefect


def test_bad_settings_exit_2_with_their_dotted_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    cases = [
        (["--set", "split.test_fraction=2"], "split.test_fraction: Input should be less than 1"),
        (["--set", "gate"], "bad --set 'gate'; expected section.field=value"),
        (["--set", "k=1.5"], "k: Input should be a valid integer"),
        (["--set", "model.params.factors=-1"], "invalid hyperparameters for model 'sgd-mf'"),
        (["--duplicates", "first"], "data.duplicates: Input should be 'latest', 'mean' or"),
        (["--model", "als", "--param", "epochs=3"], "unknown parameter(s) 'epochs' for model"),
        (["--set", "validation.rating_max=10"], "set the rating scale once"),
    ]
    for args, message in cases:
        res = runner.invoke(app, ["train", *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in " ".join(res.output.split()), (args, res.output)
    assert not (tmp_path / ".recsys").exists()  # nothing ran


def test_prefect_console_shows_errors_without_tracebacks():
    from prefect.logging.handlers import PrefectConsoleHandler

    quiet_prefect()
    logger = logging.getLogger("prefect.flow_runs")
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert handlers
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logger.makeRecord(
            "prefect.flow_runs",
            logging.ERROR,
            __file__,
            1,
            "Finished in state Failed",
            (),
            sys.exc_info(),
            extra={"flow_run_name": "train-sgd-mf"},
        )
    text = handlers[0].format(record)
    assert "Finished in state Failed" in text and "Traceback" not in text
    assert record.exc_info is not None  # other handlers (the API's) still get the traceback


def test_prefect_console_writes_to_the_stderr_of_each_command(monkeypatch):
    """Prefect binds its console handler to the sys.stderr of its first setup; a later command
    in the same process (a notebook, a CLI runner) must not log to that stream, closed by now."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    quiet_prefect()
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    console_on_this_stderr()  # what every command does first
    logging.getLogger("recsys.test").warning("said on the second stream")
    assert "said on the second stream" in second.getvalue()
    assert "Logging error" not in second.getvalue()
