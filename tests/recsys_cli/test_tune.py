"""`recsys tune` without a flow run: bad settings exit 2 with a message naming them."""

from typer.testing import CliRunner

from recsys_cli.main import app


def test_bad_tune_settings_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    cases = [
        (
            ["--model", "als", "--space", '{"rank": {"kind": "int", "low": 1, "high": 3}}'],
            "search space of 'als' names unknown hyperparameter(s) 'rank'",
        ),
        (["--model", "popularity"], "no search space for model 'popularity'"),
        (["--space", "{not json"], "bad option: Expecting property name"),
        (["--model", "als", "--param", "epochs=3"], "unknown parameter(s) 'epochs' for model"),
        (["--model", "mf"], "unknown model 'mf'"),
    ]
    for args, message in cases:
        res = runner.invoke(app, ["tune", *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in " ".join(res.output.split()), (args, res.output)
    assert not (tmp_path / ".recsys").exists()  # nothing ran
