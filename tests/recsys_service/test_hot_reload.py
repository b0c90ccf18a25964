"""Hot reload under load: threads hammer a real uvicorn server while the alias moves twice."""

import sys
import threading
import time

import httpx
import pytest

from recsys_core.serving import Scorer
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


def test_alias_moves_twice_under_concurrent_requests(
    store, model_name, data, fit, publish, move, live_server, key_headers
):
    models = [
        fit("ease", data, reg=20.0),
        fit("implicit-als", data, factors=8, iterations=4),
        fit("item-knn-implicit", data, k=15),
    ]
    refs = [publish(m, store, model_name, aliases=()) for m in models]
    move(refs[0], "champion-ranking")
    users = list(data.users.ids[:20]) + ["nobody"]
    recent = list(data.items.ids[:3])
    expected = {}
    for ref, model in zip(refs, models, strict=True):
        scorer = Scorer(model)
        for u in users:
            expected[ref.version, "get", u] = [i.item_id for i in scorer.recommend(u, 5).items]
            expected[ref.version, "post", u] = [
                i.item_id for i in scorer.recommend(u, 5, recent_items=recent).items
            ]
    app = create_app(ServiceSettings(registered_model=model_name, poll_interval_s=0.1))
    key = key_headers(app)
    stop = threading.Event()
    results: list[list[tuple]] = [[] for _ in range(4)]

    def hammer(n: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30, headers=key) as client:
            i = 0
            while not stop.is_set():
                u = users[(i + n) % len(users)]
                i += 1
                if i % 2:
                    r = client.get(f"/recommendations/{u}", params={"k": 5})
                    kind = "get"
                else:
                    r = client.post(
                        "/recommendations", json={"user_id": u, "recent_items": recent, "k": 5}
                    )
                    kind = "post"
                if r.status_code != 200:
                    results[n].append(("error", r.status_code, r.text))
                    continue
                body = r.json()
                got = [it["item_id"] for it in body["items"]]
                version = body["model"]["version"]
                results[n].append((version, got == expected[version, kind, u], kind, u))

    def wait_for(url: str, version: str) -> None:
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/model", headers=key).json()["ranking"]["version"] != version:
            assert time.monotonic() < deadline, f"version {version} was never loaded"
            time.sleep(0.05)

    with live_server(app) as server:
        wait_for(server.url, refs[0].version)
        threads = [threading.Thread(target=hammer, args=(n, server.url)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        move(refs[1], "champion-ranking")
        wait_for(server.url, refs[1].version)
        time.sleep(1.0)
        move(refs[2], "champion-ranking")
        wait_for(server.url, refs[2].version)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        metrics = httpx.get(f"{server.url}/metrics", headers=key).text
    flat = [r for rs in results for r in rs]
    errors = [r for r in flat if r[0] == "error"]
    assert not errors, errors[:3]
    assert len(flat) > 50
    # every answer is exactly the list of the version it names: no answer mixes two versions
    wrong = [r for r in flat if not r[1]]
    assert not wrong, wrong[:3]
    assert {r[0] for r in flat} == {ref.version for ref in refs}
    for rs in results:  # each client sees the versions in the order the alias moved
        order = [int(r[0]) for r in rs]
        assert order == sorted(order)
    assert 'recsys_model_reloads_total{outcome="loaded",role="ranking"} 3.0' in metrics


@pytest.mark.slow
def test_recsys_serve_command_answers(
    store, model_name, data, fit, publish, free_port, server_process, key_headers
):
    import mlflow

    ref = publish(fit("sgd-mf", data, epochs=3, factors=4), store, model_name)
    port = free_port()
    env = {
        "RECSYS_SERVE_REGISTERED_MODEL": model_name,
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
    }
    args = [sys.executable, "-m", "recsys_cli.main", "serve", "--port", port]
    with server_process(args, port=port, cwd=store, env=env, ready="/ready") as server:
        url = server.url
        key = key_headers(f"sqlite:///{store / '.recsys' / 'events.db'}")
        user = data.users.ids[0]
        for _ in range(2):
            body = httpx.get(f"{url}/recommendations/{user}", params={"k": 3}, headers=key).json()
            assert body["model"]["version"] == ref.version and len(body["items"]) == 3
        r = httpx.get(
            f"{url}/predict", params={"user_id": user, "item_id": data.items.ids[0]}, headers=key
        )
        assert r.status_code == 200 and 1.0 <= r.json()["rating"] <= 5.0


def test_a_version_whose_state_was_changed_after_registration_is_refused(
    store, model_name, data, fit, publish, move, tmp_path, caplog
):
    # an item vocabulary swapped through the artifact store after registration: the model would
    # load and answer with the wrong items; its digest no longer matches the recorded one
    import json

    import mlflow
    from fastapi.testclient import TestClient

    from recsys_core.tracking.state_digest import DIGEST_TAG

    v1 = publish(fit("ease", data, reg=20.0), store, model_name, aliases=("champion-ranking",))
    v2 = publish(fit("ease", data, reg=80.0), store, model_name, aliases=())
    client = mlflow.MlflowClient()
    assert len(client.get_model_version(model_name, v2.version).tags[DIGEST_TAG]) == 64
    path = mlflow.artifacts.download_artifacts(
        run_id=v2.run_id, artifact_path="model_state/item_ids.json", dst_path=str(tmp_path)
    )
    ids = json.loads(open(path).read())
    ids[0], ids[1] = ids[1], ids[0]
    with open(path, "w") as fh:
        json.dump(ids, fh)
    client.log_artifact(v2.run_id, path, "model_state")

    app = create_app(
        ServiceSettings(registered_model=model_name, ready_roles=["ranking"]), poll=False
    )
    with TestClient(app) as http, caplog.at_level("ERROR", logger="recsys_service.live_models"):
        app.state.live.refresh()
        assert app.state.live.served("ranking").version == v1.version
        move(v2, "champion-ranking")
        app.state.live.refresh()
        assert app.state.live.served("ranking").version == v1.version  # the old one kept
        ready = http.get("/ready")
        assert ready.status_code == 200
        why = ready.json()["problems"]["ranking"]
        assert f"version {v2.version} behind alias 'champion-ranking' cannot be loaded" in why
        assert "does not match the digest recorded at registration" in why
        assert f"still serving version {v1.version}" in why
        assert any("does not match the digest" in r.getMessage() for r in caplog.records)
        # the same files re-registered (their digest recorded now) are served
        v3 = publish(
            app.state.live.served("ranking").scorer.model,
            store,
            model_name,
            aliases=("champion-ranking",),
        )
        app.state.live.refresh()
        assert app.state.live.served("ranking").version == v3.version
        assert "problems" not in http.get("/ready").json()
