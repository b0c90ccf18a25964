"""infra/deployments/apply.py without a server: what it asks Prefect to apply."""

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location(
        "recsys_infra_apply", ROOT / "infra" / "deployments" / "apply.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_work_pool_of_prefect_yaml_is_the_one_created():
    apply = _module()
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert apply.pools_of(config) == {"recsys-process"}


def test_deployments_on_the_server_keep_their_schedules_and_paused_state():
    apply = _module()
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    other = {**config["deployments"][0], "name": "not-yet-deployed"}
    config = {**config, "deployments": [*config["deployments"], other]}
    out = apply.preserving(config, {"train-daily": True})
    by_name = {d["name"]: d for d in out["deployments"]}
    # an empty list: Prefect keeps the server's schedules; paused as on the server
    assert by_name["train-daily"]["schedules"] == [] and by_name["train-daily"]["paused"] is True
    # a new deployment gets the file's schedules
    assert by_name["not-yet-deployed"]["schedules"] == other["schedules"]
    assert "paused" not in by_name["not-yet-deployed"]
    # the input is left as it was (the file's own content)
    assert config["deployments"][0]["schedules"] and "paused" not in config["deployments"][0]
