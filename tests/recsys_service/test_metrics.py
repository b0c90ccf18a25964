"""/metrics counts answers by fallback kind and the ids the served model does not know."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


@pytest.fixture(scope="module")
def client(store, data, fit, publish, key_headers):
    model = fit("ease", data, reg=50.0)
    publish(model, store, "svc-metrics", ["champion-ranking", "champion-rating"])
    app = create_app(ServiceSettings(registered_model="svc-metrics"), poll=False)
    with TestClient(app, headers=key_headers(app)) as c:
        app.state.live.refresh()
        yield c


def _samples(client) -> dict[tuple, float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("recsys_answers", "recsys_user_lookups", "recsys_item_lookups"))
    }


def _get(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_fallbacks_and_unknown_ids_are_counted_so_their_share_is_computable(client, data):
    known_user, items = data.users.ids[0], list(data.items.ids[:3])
    before = _samples(client)
    assert client.get(f"/recommendations/{known_user}").json()["fallback"] is None
    assert client.get("/recommendations/stranger-1").json()["fallback"] == "popularity"
    assert client.get("/recommendations/stranger-2").json()["fallback"] == "popularity"
    body = client.post(
        "/recommendations",
        json={"user_id": "stranger-3", "recent_items": [*items, "ghost-a", "ghost-b"]},
    ).json()
    assert body["fallback"] is None and body["folded_in"] == 3
    assert client.get("/similar-items/ghost-c").status_code == 404
    after = _samples(client)

    def delta(name, **labels):
        return _get(after, name, **labels) - _get(before, name, **labels)

    route = "/recommendations"
    assert delta("recsys_answers_total", route=route, fallback="none") == 2
    assert delta("recsys_answers_total", route=route, fallback="popularity") == 2
    # the share of fallback answers, as the PromQL of the README computes it
    answers = [
        delta("recsys_answers_total", route=route, fallback=f) for f in ("none", "popularity")
    ]
    assert answers[1] / sum(answers) == 0.5
    assert delta("recsys_user_lookups_total", route=route, known="true") == 1
    assert delta("recsys_user_lookups_total", route=route, known="false") == 3
    assert delta("recsys_item_lookups_total", route=route, field="recent_items", known="true") == 3
    assert delta("recsys_item_lookups_total", route=route, field="recent_items", known="false") == 2
    assert (
        delta("recsys_item_lookups_total", route="/similar-items", field="item_id", known="false")
        == 1
    )
