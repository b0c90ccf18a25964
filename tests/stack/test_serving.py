"""The loopback stack's recommendation service (``recsys serve``, started by ``make stack-up``):
ready once the registry has a champion, answers for a user, reloads when the alias moves.

It serves the registered model of the e2e tests (``e2e``, polled every second: conftest): their
champion is reused when they ran before; run alone, one version is published here first."""

import time

import httpx
import mlflow
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, registry
from recsys_core.tracking.model_store import STATE_PATH

pytestmark = pytest.mark.stack

MODEL = "e2e"
RANKING = registry.ROLE_ALIASES["ranking"]


# every route but /health and /ready needs the API key the stack handed its clients
HEADERS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _api_key(stack):
    HEADERS.update(stack.serve_headers)


@pytest.fixture
def tracking(stack, monkeypatch):
    for key, value in stack.client_env().items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    # the registry too: an earlier test of the session may have left another registry URI set
    uri = stack.env["MLFLOW_TRACKING_URI"]
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow_run.configure(uri)
    assert mlflow.get_registry_uri() == uri
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _publish(folder, seed: int) -> registry.VersionRef:
    """A version of ``MODEL`` as the training flow logs it (tiny data, default seed)."""
    frame = generate(config_for("tiny", seed=42)).interactions
    model = create("sgd-mf", {"seed": seed}).fit(Interactions.from_frame(frame))
    run_id = mlflow_run.start_run("e2e-serving", model.name)
    mlflow_run.log_artifacts(run_id, model.save(folder / f"state-{seed}"), STATE_PATH)
    mlflow_run.end_run(run_id)
    return registry.register(MODEL, f"runs:/{run_id}/{STATE_PATH}", run_id, {"model": model.name})


def _served_version(url: str, timeout: float = 60.0) -> str:
    """Wait until the service is ready; the version serving lists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/ready", headers=HEADERS, timeout=5).status_code == 200:
            return httpx.get(f"{url}/model", headers=HEADERS, timeout=5).json()["ranking"][
                "version"
            ]
        time.sleep(0.5)
    raise AssertionError(
        f"{url} not ready after {timeout:.0f} s: "
        f"{httpx.get(f'{url}/ready', headers=HEADERS, timeout=5).text}"
    )


def _wait_for_version(url: str, version: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _served_version(url) != version:
        assert time.monotonic() < deadline, f"{url} still serves another version than {version}"
        time.sleep(0.3)


def test_the_stack_service_serves_the_champion_and_follows_the_alias(stack, tracking, tmp_path):
    url = stack.env["RECSYS_SERVE_URL"]
    assert httpx.get(f"{url}/health", headers=HEADERS, timeout=5).json() == {"status": "ok"}
    champion = stack.alias(MODEL, RANKING)
    if champion is None:  # this file alone: no e2e run promoted one
        champion = _publish(tmp_path, seed=1).version
        for alias in registry.ROLE_ALIASES.values():  # lists and /predict
            assert (
                registry.promote(
                    registry.VersionRef(MODEL, champion), {}, expected=None, alias=alias
                )
                is None
            )
    assert _served_version(url) == champion
    user = generate(config_for("tiny", seed=42)).interactions["user"].value_counts().index[0]
    body = httpx.get(
        f"{url}/recommendations/{user}", params={"k": 5}, headers=HEADERS, timeout=10
    ).json()
    assert body["model"]["version"] == champion and body["fallback"] is None
    assert len(body["items"]) == 5 and body["recommendation_id"]

    # the alias moves to a new version, then back: the service follows both moves
    new = _publish(tmp_path, seed=7)
    registry.promote(new, {}, expected=champion, alias=RANKING)
    _wait_for_version(url, new.version)
    body = httpx.get(
        f"{url}/recommendations/{user}", params={"k": 5}, headers=HEADERS, timeout=10
    ).json()
    assert body["model"]["version"] == new.version
    registry.promote(registry.VersionRef(MODEL, champion), {}, expected=new.version, alias=RANKING)
    _wait_for_version(url, champion)
    assert httpx.get(f"{url}/ready", headers=HEADERS, timeout=5).status_code == 200
