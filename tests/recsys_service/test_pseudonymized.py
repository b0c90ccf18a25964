"""A version tagged pseudonymized is served by raw user id: the service maps it with the key."""

import pytest
from fastapi.testclient import TestClient

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features import Interactions
from recsys_core.pseudonyms import KEY_ENV, PSEUDONYMIZED_TAG, pseudonymize_users
from recsys_core.tracking import registry
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings

KEY = "serving-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def raw():
    return generate(config_for("tiny", seed=11)).interactions


@pytest.fixture(scope="module")
def published(store, raw, fit, publish):
    """One sgd-mf version trained on pseudonyms, tagged as the training flow tags it."""
    data = Interactions.from_frame(pseudonymize_users(raw, KEY.encode()))
    model = fit("sgd-mf", data, epochs=3, factors=4)
    ref = publish(model, store, "svc-pseudo", ["champion-ranking", "champion-rating"])
    registry.tag_version(ref, {PSEUDONYMIZED_TAG: "true"})
    return model, ref


def _app():
    return create_app(ServiceSettings(registered_model="svc-pseudo"), poll=False)


def test_a_known_user_is_answered_by_raw_id(published, raw, monkeypatch, key_headers):
    model, ref = published
    monkeypatch.setenv(KEY_ENV, KEY)
    user = str(raw["user"].iloc[0])
    item = str(raw["item"].iloc[0])
    pseudonym = pseudonymize_users(raw.iloc[:1], KEY.encode())["user"].iloc[0]
    assert user not in set(map(str, model.user_vocab_.ids))
    app = _app()
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        body = client.get(f"/recommendations/{user}", params={"k": 5}).json()
        assert body["fallback"] is None and body["user_id"] == user  # the id sent
        expected = model.recommend([pseudonym], 5)
        assert [i["item_id"] for i in body["items"]] == list(expected["item"])
        posted = client.post("/recommendations", json={"user_id": user, "k": 5}).json()
        assert posted["user_id"] == user and posted["fallback"] is None
        p = client.get("/predict", params={"user_id": user, "item_id": item}).json()
        assert p["user_id"] == user and p["fallback"] is None
        assert p["rating"] == pytest.approx(float(model.predict([pseudonym], [item])[0]))
        # the pseudonym itself is not a user id the service accepts as such
        again = client.get(f"/recommendations/{pseudonym}").json()
        assert again["fallback"] == "popularity"
        text = client.get("/metrics").text
        assert KEY not in text and pseudonym not in text


def test_without_the_key_the_version_is_not_served_and_says_why(
    published, monkeypatch, key_headers
):
    monkeypatch.delenv(KEY_ENV, raising=False)
    app = _app()
    with TestClient(app, headers=key_headers(app)) as client:
        app.state.live.refresh()
        r = client.get("/recommendations/1")
        assert r.status_code == 503
        assert f"{KEY_ENV} is not set" in r.json()["detail"]
        assert KEY not in client.get("/model").text
