"""Every route and every bad input of the service, against a real (sqlite) MLflow registry."""

import logging

import mlflow
import pytest
from fastapi.testclient import TestClient

from recsys_core.serving import Scorer
from recsys_core.tracking import mlflow_run, registry
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings

ROLES = dict(ranking_alias="champion-ranking", rating_alias="champion-rating")


@pytest.fixture(scope="module")
def models(data, fit):
    return {"ease": fit("ease", data, reg=50.0), "sgd-mf": fit("sgd-mf", data, epochs=5, factors=8)}


@pytest.fixture(scope="module")
def served(store, models, publish, key_headers):
    """One service with a ranking (ease) and a rating (sgd-mf) champion of its own model."""
    ranking = publish(models["ease"], store, "svc-roles", ["champion-ranking"])
    rating = publish(models["sgd-mf"], store, "svc-roles", ["champion-rating"])
    # the default settings serve lists from champion-ranking and /predict from champion-rating
    settings = ServiceSettings(registered_model="svc-roles", max_k=50, max_recent_items=5)
    assert {"ranking_alias": settings.ranking_alias, "rating_alias": settings.rating_alias} == ROLES
    app = create_app(settings, poll=False)
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        yield client, ranking, rating


def test_get_recommendations_for_a_known_user(served, models, data):
    client, ranking, _ = served
    user = data.users.ids[0]
    r = client.get(f"/recommendations/{user}", params={"k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = models["ease"].recommend([user], 7)
    assert [i["item_id"] for i in body["items"]] == list(expected["item"])
    assert body["model"] == {
        "name": "svc-roles",
        "version": ranking.version,
        "role": "ranking",
        "alias": "champion-ranking",
        "algorithm": "ease",
    }
    assert body["fallback"] is None and body["warnings"] == [] and body["user_id"] == user
    assert len(body["recommendation_id"]) == 32
    assert "reasons" not in body["items"][0] or body["items"][0]["reasons"] is None
    again = client.get(f"/recommendations/{user}", params={"k": 7}).json()
    assert again["recommendation_id"] != body["recommendation_id"]


def test_explain_gives_readable_reasons(served, data):
    client, _, _ = served
    user = data.users.ids[1]
    history = set(data.items.ids[data.matrix[1].indices])
    body = client.get(f"/recommendations/{user}", params={"k": 3, "explain": "true"}).json()
    for item in body["items"]:
        assert item["reasons"] and all(r["item_id"] in history for r in item["reasons"])
        assert item["reasons"][0]["text"].startswith("you interacted with item")
        # no item metadata in this data: ids in the sentence, numbers in the weight fields
        assert item["because"].startswith("Because you interacted with item ")
        assert all(isinstance(r["weight"], float) for r in item["reasons"])


LIST_QUERIES = [  # the query of GET /recommendations/{user}, the k and explain it means
    ("", 10, False),
    ("k=3", 3, False),
    ("k=50", 50, False),
    ("k=03", 3, False),
    ("k=2&k=4", 4, False),
    ("explain=true", 10, True),
    ("k=2&explain=false", 2, False),
    ("k=2&explain=1", 2, True),
    ("k=2&explain=TRUE", 2, True),
    ("k=2&explain=off", 2, False),
    ("k=2&colour=red", 2, False),
]


@pytest.mark.parametrize(
    ("query", "k", "explain"), LIST_QUERIES, ids=[q[0] or "no query" for q in LIST_QUERIES]
)
def test_list_parameters_are_read_as_their_declarations_say(served, data, query, k, explain):
    """The common list requests skip FastAPI's parameter reading: the others go through it,
    and both read every query alike."""
    client, _, _ = served
    r = client.get(f"/recommendations/{data.users.ids[1]}?{query}")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == k
    assert all(bool(i["reasons"]) == explain for i in items)


def test_unknown_user_gets_the_popularity_fallback(served, models, data):
    client, _, _ = served
    body = client.get("/recommendations/nobody-at-all").json()
    assert body["fallback"] == "popularity" and len(body["items"]) == 10
    top = data.items.ids[models["ease"].item_popularity_.argmax()]
    assert body["items"][0]["item_id"] == top


def test_post_folds_in_recent_items(served, data):
    client, _, _ = served
    user = data.users.ids[2]
    before = client.post("/recommendations", json={"user_id": user, "k": 5}).json()
    clicked = [before["items"][0]["item_id"], before["items"][1]["item_id"]]
    after = client.post(
        "/recommendations", json={"user_id": user, "k": 5, "recent_items": clicked}
    ).json()
    assert after["folded_in"] == 2 and after["fallback"] is None
    assert not set(clicked) & {i["item_id"] for i in after["items"]}
    # a brand-new user with a few clicks gets a personal list, not the popular one
    history = list(data.items.ids[data.matrix[3].indices[:5]])
    new = client.post(
        "/recommendations", json={"recent_items": history, "k": 5, "exclude": ["ghost"]}
    ).json()
    popular = client.get("/recommendations/nobody", params={"k": 5}).json()
    assert new["fallback"] is None and new["user_id"] is None
    assert [i["item_id"] for i in new["items"]] != [i["item_id"] for i in popular["items"]]
    assert new["warnings"] == ["unknown item ids in exclude were ignored: 'ghost'"]
    unknown = client.post("/recommendations", json={"recent_items": ["ghost", 99999]}).json()
    assert unknown["fallback"] == "popularity" and "'ghost', '99999'" in unknown["warnings"][0]


def test_similar_items(served, models, data):
    client, _, _ = served
    item = data.items.ids[4]
    body = client.get(f"/similar-items/{item}", params={"k": 4}).json()
    expected = Scorer(models["ease"]).similar_items(item, 4)
    assert [i["item_id"] for i in body["items"]] == [s.item_id for s in expected]
    assert body["model"]["role"] == "ranking" and body["recommendation_id"]
    r = client.get("/similar-items/no-such-item")
    assert r.status_code == 404 and "unknown item 'no-such-item'" in r.json()["detail"]


def test_answers_are_what_the_openapi_schema_promises(served, data):
    """The list routes send plain data built without their models: it must still be exactly
    what their response models (shown in the OpenAPI document) describe."""
    from recsys_service.schemas import ItemOut, RecommendationOut, SimilarOut

    client, _, _ = served
    user = data.users.ids[1]
    answers = [
        (RecommendationOut, client.get(f"/recommendations/{user}", params={"explain": "true"})),
        (RecommendationOut, client.get("/recommendations/nobody")),
        (RecommendationOut, client.post("/recommendations", json={"recent_items": ["ghost"]})),
        (SimilarOut, client.get(f"/similar-items/{data.items.ids[0]}", params={"k": 2})),
    ]
    for model, r in answers:
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert set(body) == set(model.model_fields), (model, body)
        assert model.model_validate(body).model_dump(mode="json") == body
        for item in body["items"]:
            assert set(item) == set(ItemOut.model_fields)
    schema = client.get("/openapi.json").json()
    get = schema["paths"]["/recommendations/{user_id}"]["get"]["responses"]["200"]
    assert get["content"]["application/json"]["schema"]["$ref"].endswith("/RecommendationOut")


def test_predict_uses_the_rating_champion(served, models, data):
    client, _, rating = served
    user, item = data.users.ids[0], data.items.ids[0]
    body = client.get("/predict", params={"user_id": user, "item_id": item}).json()
    assert body["rating"] == pytest.approx(float(models["sgd-mf"].predict([user], [item])[0]))
    assert body["model"]["version"] == rating.version and body["model"]["role"] == "rating"
    assert body["model"]["algorithm"] == "sgd-mf" and body["fallback"] is None
    cold = client.get("/predict", params={"user_id": "nobody", "item_id": item}).json()
    assert "unknown user" in cold["fallback"]


def test_health_ready_model_and_metrics(served):
    client, ranking, rating = served
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"ready": True}
    info = client.get("/model").json()
    assert info["ranking"]["version"] == ranking.version and info["ranking"]["ready"]
    assert info["rating"]["version"] == rating.version and info["rating"]["algorithm"] == "sgd-mf"
    assert info["ranking"]["registry_error"] is None and info["ranking"]["loaded_at"]
    client.get("/recommendations/x", params={"k": 0})
    assert client.get("/recommendations/nobody-at-all").json()["fallback"] == "popularity"
    text = client.get("/metrics").text
    assert (
        'recsys_requests_total{method="GET",route="/recommendations/{user_id}",status="422"}'
        in text
    )
    assert 'recsys_request_duration_seconds_bucket{le="0.001",method="GET",route="/health"}' in text
    assert f'recsys_model_version{{role="rating"}} {float(rating.version)}' in text
    assert 'recsys_model_reloads_total{outcome="loaded",role="ranking"} 1.0' in text
    assert 'recsys_fallbacks_total{fallback="popularity",route="/recommendations"}' in text


BAD = [
    (
        "get",
        "/recommendations/1?k=0",
        None,
        422,
        "k=0 is not valid: k must be an integer from 1 to 50",
    ),
    ("get", "/recommendations/1?k=-3", None, 422, "k=-3 is not valid"),
    ("get", "/recommendations/1?k=51", None, 422, "k=51 is not valid"),
    ("get", "/recommendations/1?k=ten", None, 422, "k=ten is not valid"),
    ("get", "/recommendations/1?k=2.5", None, 422, "k=2.5 is not valid"),
    ("get", "/recommendations/1?explain=maybe", None, 422, "explain=maybe must be true or false"),
    ("get", "/recommendations/1?k=", None, 422, "k= is not valid"),
    ("get", "/recommendations/1?k=1000000", None, 422, "k=1000000 is not valid"),
    ("get", "/recommendations/" + "u" * 257, None, 422, "is not a valid id"),
    ("get", "/similar-items/1?k=1000", None, 422, "k=1000 is not valid"),
    ("get", "/predict?user_id=1", None, 422, "query parameter 'item_id' is required"),
    ("post", "/recommendations", "{not json", 400, "malformed JSON body"),
    ("post", "/recommendations", "", 422, "a JSON body is required"),
    ("post", "/recommendations", "[1, 2]", 422, "the body must be a JSON object"),
    (
        "post",
        "/recommendations",
        '{"user_id": "1", "colour": "red"}',
        422,
        "unknown field 'colour'; the allowed fields are user_id, recent_items, exclude, k, explain",
    ),
    ("post", "/recommendations", '{"user_id": "1", "k": "5"}', 422, "k='5' is not valid"),
    ("post", "/recommendations", '{"user_id": "1", "k": 5.0}', 422, "k=5.0 is not valid"),
    ("post", "/recommendations", '{"user_id": "1", "k": 0}', 422, "k=0 is not valid"),
    ("post", "/recommendations", '{"user_id": "1", "k": 51}', 422, "k=51 is not valid"),
    ("post", "/recommendations", '{"user_id": 1.5}', 422, "user_id=1.5 is not a valid id"),
    ("post", "/recommendations", '{"user_id": ["1"]}', 422, "user_id=['1'] is not a valid id"),
    ("post", "/recommendations", '{"user_id": true}', 422, "user_id=True is not a valid id"),
    ("post", "/recommendations", '{"user_id": ""}', 422, "user_id='' is not a valid id"),
    ("post", "/recommendations", '{"recent_items": "12"}', 422, "recent_items='12'"),
    (
        "post",
        "/recommendations",
        '{"recent_items": [{"id": 1}]}',
        422,
        "recent_items[0]={'id': 1} is not a valid id",
    ),
    (
        "post",
        "/recommendations",
        '{"recent_items": ["1","2","3","4","5","6"]}',
        422,
        "recent_items has 6 entries; at most 5 are allowed in one request",
    ),
    (
        "post",
        "/recommendations",
        '{"exclude": [1,2,3,4,5,6], "user_id": "1"}',
        422,
        "exclude has 6 entries; at most 5",
    ),
    ("post", "/recommendations", '{"k": 3}', 422, "give a user_id, recent_items, or both"),
    (
        "post",
        "/recommendations",
        '{"user_id": "1", "explain": "yes"}',
        422,
        "explain='yes' must be true or false",
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"), BAD, ids=[f"{b[1]} {b[2]}" for b in BAD]
)
def test_bad_input_gets_a_4xx_that_says_what_to_fix(served, method, url, body, status, message):
    client, _, _ = served
    if method == "get":
        r = client.get(url)
    else:
        r = client.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_no_model_registered_yet(store, model_name, key_headers):
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        assert client.get("/health").status_code == 200
        r = client.get("/ready")
        assert r.status_code == 503
        why = f"registered model {model_name!r} has no version with alias '%s' yet"
        reasons = r.json()["reasons"]
        assert why % "champion-ranking" in reasons["ranking"]
        assert why % "champion-rating" in reasons["rating"]
        for url, alias in (
            ("/recommendations/1", "champion-ranking"),
            ("/similar-items/1", "champion-ranking"),
            ("/predict?user_id=1&item_id=2", "champion-rating"),
        ):
            r = client.get(url)
            assert r.status_code == 503 and why % alias in r.json()["detail"]
        r = client.post("/recommendations", json={"user_id": "1"})
        assert r.status_code == 503
        assert (
            client.get("/model").json()["ranking"]["problem"].startswith(why % "champion-ranking")
        )


def test_ready_with_one_role_served_unless_both_are_required(
    store, model_name, models, publish, key_headers
):
    """A deployment that trains only ranking models is ready; ``ready_roles`` asks for more."""
    publish(models["ease"], store, model_name, ["champion-ranking"])
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        r = client.get("/ready")
        assert r.status_code == 200 and r.json()["ready"] is True
        assert "champion-rating" in r.json()["not_served"]["rating"]
    strict = create_app(
        ServiceSettings(registered_model=model_name, ready_roles=["ranking", "rating"]), poll=False
    )
    with TestClient(strict, headers=key_headers(strict)) as client:
        strict.state.live.refresh()
        r = client.get("/ready")
        assert r.status_code == 503 and list(r.json()["reasons"]) == ["rating"]


def test_a_ranking_model_cannot_answer_predict(store, model_name, models, publish, key_headers):
    publish(models["ease"], store, model_name)
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        r = client.get("/predict", params={"user_id": "1", "item_id": "2"})
        assert r.status_code == 503 and "does not predict ratings" in r.json()["detail"]


def test_registry_unreachable_keeps_serving(
    store, model_name, models, data, monkeypatch, caplog, publish, key_headers
):
    v1 = publish(models["ease"], store, model_name)
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        working = mlflow.get_tracking_uri()
        # mlflow.set_*_uri write these variables too; monkeypatch restores them afterwards
        monkeypatch.setenv("MLFLOW_TRACKING_URI", working)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", working)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
        # a closed loopback port: every registry call is refused
        mlflow.set_tracking_uri("http://127.0.0.1:9")
        mlflow.set_registry_uri("http://127.0.0.1:9")
        try:
            with caplog.at_level(logging.WARNING, logger="recsys_service"):
                app.state.live.refresh()
            r = client.get(f"/recommendations/{data.users.ids[0]}")
            assert r.status_code == 200 and r.json()["model"]["version"] == v1.version
            info = client.get("/model").json()["ranking"]
            assert info["version"] == v1.version and info["ready"]
            assert "the model registry cannot be reached" in info["registry_error"]
            assert f"still serving version {v1.version}" in info["registry_error"]
            assert "cannot be reached" in caplog.text
            assert client.get("/ready").status_code == 200
        finally:
            mlflow.set_tracking_uri(working)
            mlflow.set_registry_uri(working)
        app.state.live.refresh()
        assert client.get("/model").json()["ranking"]["registry_error"] is None


def test_a_broken_or_vanished_version_never_unloads_the_served_one(
    store, model_name, models, data, publish, move, key_headers
):
    v1 = publish(models["ease"], store, model_name)
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        # a version without its model_state artifacts cannot be loaded
        run_id = mlflow_run.start_run("serve-test", "empty")
        broken = registry.register(model_name, f"runs:/{run_id}/model_state", run_id, {})
        move(broken, "champion-ranking")
        app.state.live.refresh()
        info = client.get("/model").json()["ranking"]
        assert info["version"] == v1.version
        assert (
            f"version {broken.version} behind alias 'champion-ranking' cannot be loaded"
            in info["registry_error"]
        )
        assert client.get(f"/recommendations/{data.users.ids[0]}").status_code == 200
        mlflow.MlflowClient().delete_registered_model_alias(model_name, "champion-ranking")
        app.state.live.refresh()
        info = client.get("/model").json()["ranking"]
        assert info["version"] == v1.version and "no longer set" in info["registry_error"]
        text = client.get("/metrics").text
        assert 'recsys_model_reloads_total{outcome="load_failed",role="ranking"} 1.0' in text
