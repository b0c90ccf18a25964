from __future__ import annotations

from typer.testing import CliRunner

from recsys_cli.main import app

runner = CliRunner()


def test_db_upgrade_reads_the_url_from_the_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    before = runner.invoke(app, ["db", "current"])
    assert before.exit_code == 0 and "revision none" in before.output
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "at revision 0005" in result.output
    after = runner.invoke(app, ["db", "current"])
    assert "revision 0005" in after.output and "up to date" in after.output


def test_db_upgrade_of_a_database_that_is_down_hides_the_password():
    result = runner.invoke(
        app, ["db", "upgrade", "--url", "postgresql://owner:hunter22@127.0.0.1:1/events"]
    )
    assert result.exit_code != 0
    assert "cannot reach the database" in result.output
    assert "hunter22" not in result.output
