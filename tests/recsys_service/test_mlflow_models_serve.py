"""The registered pyfunc still answers under ``mlflow models serve -m models:/...@alias``."""

import os
import sys
from pathlib import Path

import httpx
import mlflow
import pytest

from recsys_core.tracking import mlflow_run, pyfunc, registry


@pytest.mark.slow
def test_mlflow_models_serve_answers_from_the_alias(
    store, model_name, data, fit, free_port, server_process
):
    model = fit("sgd-mf", data, epochs=3, factors=4)
    run_id = mlflow_run.start_run("serve-test", "pyfunc")
    with mlflow.start_run(run_id=run_id):
        info = pyfunc.log_model(model, store / "pyfunc")
    ref = registry.register(
        model_name, info.model_uri, run_id, {}, model_id=getattr(info, "model_id", None)
    )
    mlflow.MlflowClient().set_registered_model_alias(model_name, "champion-ranking", ref.version)
    port = free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    # mlflow starts `uvicorn` by name: the environment's bin folder must be on PATH
    env = {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "PATH": f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    args = [
        mlflow_bin,
        "models",
        "serve",
        "-m",
        f"models:/{model_name}@champion-ranking",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--workers",
        "1",
    ]
    with server_process(args, port=port, cwd=store, env=env, ready="/ping", timeout=180) as srv:
        url = srv.url
        user, item = str(data.users.ids[0]), str(data.items.ids[0])
        r = httpx.post(
            f"{url}/invocations",
            timeout=30,
            json={"dataframe_records": [{"user": user, "item": item}]},
        )
        assert r.status_code == 200, r.text
        got = r.json()["predictions"][0]["prediction"]
        assert got == pytest.approx(float(model.predict([user], [item])[0]))
        r = httpx.post(
            f"{url}/invocations",
            timeout=30,
            json={"dataframe_records": [{"user": user}], "params": {"k": 3}},
        )
        assert r.status_code == 200, r.text
        items = [row["item"] for row in r.json()["predictions"]]
        assert items == list(model.recommend([user], 3)["item"])
