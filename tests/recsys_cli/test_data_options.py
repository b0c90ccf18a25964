"""Every command that reads data takes the same data options; errors are in words, without
pydantic's links; a command's help keeps its sentences whole."""

import pydantic
import pytest
from typer.testing import CliRunner

from recsys_cli.console import error_message
from recsys_cli.main import app
from recsys_core.validation_errors import in_words

runner = CliRunner()
DATA_OPTIONS = {
    "--source",
    "--since",
    "--synthetic-size",
    "--seed",
    "--columns",
    "--duplicates",
    "--rating-min",
    "--rating-max",
    "--set",
}


def _options(command: str) -> set[str]:
    import typer.main

    click_command = typer.main.get_command(app).commands[command]
    return {opt for p in click_command.params for opt in p.opts}


@pytest.mark.parametrize("command", ["train", "tune"])
def test_the_commands_that_collect_data_take_the_same_data_options(command):
    assert DATA_OPTIONS <= _options(command)


def test_tune_reads_the_data_options_into_its_data_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    cases = [
        (["--rating-min", "0.5"], "data sets {'rating_min': 0.5"),
        (["--set", "data.rating_min=0.5"], "data sets {'rating_min': 0.5"),
        (["--rating-max", "10", "--set", "data.duplicates=mean"], "'rating_max': 10.0"),
    ]
    for args, shown in cases:
        # a validation scale that differs from data's is refused, naming what data was given
        res = runner.invoke(app, ["tune", *args, "--set", "validation.rating_min=2"])
        assert res.exit_code == 2, (args, res.output)
        text = " ".join(res.output.split())
        assert "validation sets {'rating_min': 2}" in text and shown in text, (args, text)
    assert not (tmp_path / ".recsys").exists()  # refused before any run


def test_bad_data_settings_are_named_in_words(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(
        app,
        [
            "tune",
            "--duplicates",
            "sometimes",
            "--set",
            "data.nope=1",
            "--space",
            '{"reg": {"kind": "float", "low": "x", "high": 1}}',
        ],
    )
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "data.duplicates: Input should be 'latest', 'mean' or 'refuse' (got 'sometimes')" in text
    assert "data.nope: unknown setting" in text
    assert "space.reg.low: Input should be a valid number" in text and "(got 'x')" in text
    assert "pydantic.dev" not in text and "[type=" not in text


def test_a_validation_error_reaching_the_cli_is_in_words():
    from recsys_core.tuning import ParamRange

    with pytest.raises(pydantic.ValidationError) as info:
        ParamRange(kind="float", low="x", high=1)
    assert "errors.pydantic.dev" in str(info.value)  # what used to be printed
    message = error_message(info.value)
    assert message == (
        "invalid settings: low: Input should be a valid number, unable to parse "
        "string as a number (got 'x')"
    )
    nested = ValueError(str(info.value))  # a validator that re-raised pydantic's text
    assert "pydantic.dev" not in error_message(nested)
    assert "ParamRange" not in error_message(nested)


def test_nested_errors_lose_class_headers_and_type_tails():
    class Inner(pydantic.BaseModel):
        n: int

    class Outer(pydantic.BaseModel):
        inner: Inner

        @pydantic.field_validator("inner", mode="before")
        @classmethod
        def _rebuild(cls, value):
            try:
                return Inner(**value)
            except pydantic.ValidationError as exc:
                raise ValueError(str(exc)) from None

    with pytest.raises(pydantic.ValidationError) as info:
        Outer(inner={"n": "many"})
    words = in_words(info.value)
    assert words.startswith("inner: ") and "n: Input should be a valid integer" in words
    assert "Inner" not in words and "pydantic.dev" not in words and "[type=" not in words


@pytest.mark.parametrize("command", ["tune", "train", "serve", "forget"])
def test_help_keeps_each_paragraph_whole(command):
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0
    if command == "tune":
        assert "train the best parameters with `recsys train`, whose gate decides." in res.output
    # at 400 columns, a paragraph is one line: no line of the help ends mid-sentence
    lines = [ln.strip(" │") for ln in res.output.split("╭")[0].splitlines() if ln.strip()]
    for line in lines[1:]:
        assert line.endswith((".", ":", ")", "]")) or line.startswith("Usage"), line
