"""The Prefect form speaks plain words: every description in the deployments' parameter schemas
(what the UI shows next to each field) and in prefect.yaml is free of Sphinx roles, reST
literals and Python names (class names, reprs, None)."""

import re
from pathlib import Path

import pytest
import yaml
from prefect.utilities.callables import parameter_schema

from flows.batch import batch_recommendations_flow
from flows.training import training_flow
from flows.tune import tune_flow

ROOT = Path(__file__).resolve().parents[2]
# product names written in CamelCase are words, not code
ALLOWED_CAMEL = {"MovieLens", "GroupLens", "PostgreSQL", "JavaScript"}
MARKUP = [
    (re.compile(r":[a-z]+:`"), "a Sphinx role"),
    (re.compile(r"``"), "a reST literal"),
    (re.compile(r"\bNone\b"), "Python's None (the form shows an empty field)"),
    (re.compile(r"PydanticUndefined|<class |object at 0x"), "a Python repr"),
    (
        re.compile(r"\b(?:recsys_core|recsys_service|recsys_cli|flows|tasks)\.[a-z_.]+"),
        "a Python module path",
    ),
]
CAMEL = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b")


def descriptions(schema, path=""):
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "description" and isinstance(value, str):
                yield path, value
            else:
                yield from descriptions(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            yield from descriptions(value, f"{path}[{n}]")


def problems(text: str, class_names: set[str]) -> list[str]:
    found = [f"{why}: {m.group(0)!r}" for rx, why in MARKUP for m in rx.finditer(text)]
    found += [
        f"a Python class name: {m.group(0)!r}"
        for m in CAMEL.finditer(text)
        if m.group(0) not in ALLOWED_CAMEL
    ]
    found += [
        f"a Python class name: {name!r}"
        for name in class_names
        if re.search(rf"\b{name}\b", text) and name not in ALLOWED_CAMEL
    ]
    return found


@pytest.mark.parametrize(
    "flow", [training_flow, tune_flow, batch_recommendations_flow], ids=lambda f: f.name
)
def test_every_form_description_is_plain_words(flow):
    schema = parameter_schema(flow).model_dump_for_openapi()
    class_names = set(schema.get("definitions", {}))
    assert class_names, "the form has sections"
    bad = {
        path: found for path, text in descriptions(schema) if (found := problems(text, class_names))
    }
    assert not bad, bad


def test_deployment_descriptions_are_plain_words():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    texts = [d.get("description", "") for d in spec["deployments"]]
    assert all(texts)
    bad = {t[:40]: found for t in texts if (found := problems(t, set()))}
    assert not bad, bad


def test_the_checks_catch_what_the_form_used_to_show():
    old = (
        "Parameters of one training run: the shared sections (:class:`RunInputs`), and "
        "``gate`` (what a challenger must achieve)"
    )
    assert len(problems(old, {"RunInputs"})) >= 3
    assert problems("members=(MemberSpec(model='als', params={}))", set())
    assert problems("cf_params=PydanticUndefined", set())
    assert problems("see recsys_core.validation.drift", set())
    assert not problems("size of the synthetic data set (MovieLens shapes)", set())
