"""``POST /events`` and the recording of served lists, against a real SQLite event store (and a
PostgreSQL URL nobody listens on for the store being down)."""

import itertools
import logging
import threading
import time

import httpx
import psycopg2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from recsys_core.events.keys import SCOPES, KeyStore
from recsys_core.events.store import EventStore
from recsys_core.events.tables import events as events_table
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


@pytest.fixture(scope="module")
def ranking(store, data, fit, publish):
    return publish(fit("ease", data, reg=50.0), store, "svc-events")


@pytest.fixture
def event_store(tmp_path):
    es = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    es.upgrade()
    yield es
    es.close()


_senders = itertools.count()


def _client(events, keys=None, **settings):
    """The app, and a client sending a new key with every scope (made in ``keys``, default
    the event store's database)."""
    app = create_app(
        ServiceSettings(registered_model="svc-events", **settings),
        poll=False,
        events=events,
        keys=keys,
    )
    secret = app.state.auth.store.create(f"sender-{next(_senders)}", SCOPES)
    return app, TestClient(app, headers={"Authorization": f"Bearer {secret}"})


def _rows(es: EventStore) -> int:
    with es.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar_one()


def _ev(i, **over):
    return {"event_id": f"e{i}", "user_id": "u1", "item_id": f"i{i}", "type": "click", **over}


def test_post_events_stores_what_it_acknowledges(ranking, event_store):
    app, client = _client(event_store, max_event_batch=5)
    with client:
        r = client.post("/events", json=[_ev(1), _ev(2), _ev(3, type="rating", rating=4)])
        assert r.status_code == 200, r.text
        assert r.json() == {"received": 3, "stored": 3, "duplicates": 0}
        # replayed and repeated ids are acknowledged as duplicates and change nothing
        r = client.post("/events", json=[_ev(2), _ev(4), _ev(4)])
        assert r.json() == {"received": 3, "stored": 1, "duplicates": 2}
        assert _rows(event_store) == 4
        # one bad event refuses the batch: every problem is listed, nothing is stored
        r = client.post(
            "/events",
            json=[_ev(5), _ev(6, type="like"), _ev(7, type="rating", rating=9), {"user_id": "u"}],
        )
        assert r.status_code == 422
        problems = r.json()["problems"]
        assert [(p["index"], p["field"]) for p in problems][:3] == [
            (1, "type"),
            (2, "rating"),
            (3, "event_id"),
        ]
        assert (
            "rating scale" in problems[1]["message"] and "nothing was stored" in r.json()["detail"]
        )
        assert _rows(event_store) == 4
        too_many = client.post("/events", json=[_ev(i) for i in range(10, 16)])
        assert too_many.status_code == 413 and "at most 5" in too_many.json()["detail"]
        assert client.post("/events", json={"event_id": "x"}).status_code == 422
        bad_json = client.post(
            "/events", content=b"[{", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400
        assert _rows(event_store) == 4
        metrics = client.get("/metrics").text
        assert 'recsys_events_total{outcome="stored"} 4.0' in metrics
        assert 'recsys_events_total{outcome="duplicate"} 2.0' in metrics


def test_a_click_on_a_served_list_counts_in_click_through(ranking, event_store, data):
    app, client = _client(event_store)
    with client:
        app.state.live.refresh()
        user = data.users.ids[0]
        shown = [client.get(f"/recommendations/{user}", params={"k": 5}).json() for _ in range(3)]
        similar = client.get(f"/similar-items/{shown[0]['items'][0]['item_id']}").json()
        posted = client.post("/recommendations", json={"user_id": user}).json()
        assert app.state.recorder.flush()
        clicked = shown[1]
        r = client.post(
            "/events",
            json=[
                _ev(
                    "c1",
                    user_id=user,
                    item_id=clicked["items"][0]["item_id"],
                    recommendation_id=clicked["recommendation_id"],
                ),
                _ev("v1", user_id=user, type="view", recommendation_id=posted["recommendation_id"]),
            ],
        )
        assert r.status_code == 200, r.text
        ctr = event_store.click_through("svc-events")
        assert ctr == [
            {
                "registered_model": "svc-events",
                "model_version": ranking.version,
                "served": 5,
                "engaged": 1,
                "ctr": 0.2,
            }
        ]
        assert (
            similar["recommendation_id"]
            and 'outcome="recorded"} 5.0' in client.get("/metrics").text
        )


def test_store_down_gives_503_and_recommendations_still_answer(
    ranking, data, free_port, caplog, event_store
):
    down = EventStore(f"postgresql://recsys:s3cret@127.0.0.1:{free_port()}/events")
    # the keys of a database that works: the events' database is the one that is down
    app, client = _client(down, keys=KeyStore(event_store.url))
    with client, caplog.at_level(logging.WARNING):
        app.state.live.refresh()
        r = client.post("/events", json=[_ev(1)])
        assert r.status_code == 503
        assert "cannot reach the database" in r.json()["detail"]
        assert "s3cret" not in r.json()["detail"]
        user = data.users.ids[0]
        for _ in range(2):
            r = client.get(f"/recommendations/{user}")
            assert r.status_code == 200 and len(r.json()["items"]) == 10
        assert app.state.recorder.flush()
        # retried, then kept in the outbox for a later try (recsys_service/feedback.py)
        assert 'recsys_served_lists_total{outcome="deferred"} 2.0' in client.get("/metrics").text
    assert "s3cret" not in caplog.text and "not recorded" in caplog.text
    assert "kept in the outbox" in caplog.text


def test_the_database_going_away_mid_run_loses_nothing_acknowledged(
    ranking, data, pg_url, live_server, monkeypatch
):
    """Senders post batches over HTTP while the PostgreSQL database stops taking connections
    and its sessions are killed (what a restart or failover does), then comes back: every
    acknowledged event is in the table, the refused batches got 503 with the reason, lists
    kept being served, and re-sending the refused batches stores each event exactly once."""
    store = EventStore(pg_url)
    store.upgrade()
    name = pg_url.rsplit("/", 1)[1]
    monkeypatch.setenv("RECSYS_KEYS_PEPPER", "a-pepper-of-the-test-database")
    app, _ = _client(store)
    key = {"Authorization": f"Bearer {app.state.auth.store.create('outage', SCOPES)}"}
    app.state.live.refresh()
    phase = ["up"]
    acked: dict[str, str] = {}  # event_id -> phase of the 200 that acknowledged it
    refused: list[tuple[str, list[dict], str]] = []
    served: list[int] = []
    miscounted: list[str] = []  # an assert in a sender thread would only be a warning
    stop = threading.Event()
    lock = threading.Lock()

    def send(n: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30, headers=key) as client:
            i = 0
            while not stop.is_set():
                batch = [_ev(f"{n}-{i}-{j}", user_id=f"u{n}") for j in range(5)]
                at = phase[0]
                r = client.post("/events", json=batch)
                with lock:
                    if r.status_code == 200:
                        if r.json()["stored"] != 5:
                            miscounted.append(r.text)
                        acked.update({e["event_id"]: at for e in batch})
                    else:
                        refused.append((at, batch, f"{r.status_code} {r.json()['detail']}"))
                if i % 3 == 0:
                    rec = client.get(f"/recommendations/{data.users.ids[n]}", params={"k": 3})
                    with lock:
                        served.append(rec.status_code)
                i += 1

    admin = psycopg2.connect(pg_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    try:
        with live_server(app) as server:
            # the key checked once before the clock starts (then remembered, as a sender's is)
            assert httpx.get(f"{server.url}/model", headers=key).status_code == 200
            threads = [threading.Thread(target=send, args=(n, server.url)) for n in range(3)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            phase[0] = "down"
            with admin.cursor() as cur:
                cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            time.sleep(2.0)
            with admin.cursor() as cur:
                cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            phase[0] = "back"
            time.sleep(1.5)
            stop.set()
            for t in threads:
                t.join(60)
            assert not any(t.is_alive() for t in threads), "a sender is still running"
    finally:
        admin.close()
    assert not miscounted, miscounted[:3]  # each acknowledged batch stored all five events
    in_table = set(_ids(store))
    assert set(acked) <= in_table  # nothing acknowledged that was not stored
    phases = set(acked.values())
    assert {"up", "back"} <= phases, phases  # stored before the outage and after it
    assert refused, "no batch was sent while the database was away"
    assert all(code.startswith("503 ") for _, _, code in refused), refused[:3]
    assert any("cannot reach the database" in why for _, _, why in refused), refused[:3]
    assert served and set(served) == {200}
    # a sender re-sends what was refused: each event then stored exactly once
    with TestClient(app, headers=key) as client:
        for _, batch, _ in refused:
            r = client.post("/events", json=batch)
            assert r.status_code == 200 and r.json()["received"] == len(batch), r.text
    everything = set(acked) | {e["event_id"] for _, batch, _ in refused for e in batch}
    assert set(_ids(store)) == everything and store.count() == len(everything)
    store.close()


def _ids(store: EventStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(events_table.c.event_id)).scalars())


def test_a_client_gone_before_its_body_was_read_is_no_server_error(ranking, event_store, caplog):
    """Under load a client (wrk at its timeout) can close the connection while its request waits
    for the event loop: the server's receive() then says ``http.disconnect`` instead of giving
    the body. That was an unhandled ClientDisconnect ("Exception in ASGI application", a 500
    in the access log); it is a 499 with nothing stored."""
    import asyncio

    app, client = _client(event_store)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/events",
        "raw_path": b"/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
            (b"authorization", client.headers["authorization"].encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.INFO, logger="recsys_service.routes.events"):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    assert _rows(event_store) == 0
    assert "closed the connection" in caplog.text
    metrics = app.state.metrics.render().decode()
    assert 'recsys_requests_total{method="POST",route="/events",status="499"} 1.0' in metrics


def test_event_ids_belong_to_their_sender_and_a_changed_event_is_409(ranking, event_store):
    app, web = _client(event_store)
    _, other = _client(event_store)
    with web, other:
        assert web.post("/events", json=[_ev(1), _ev(2)]).json()["stored"] == 2
        # another key's e1 is its own event: stored, and it takes nothing from the first
        assert other.post("/events", json=[_ev(1, item_id="x")]).json()["stored"] == 1
        r = web.post("/events", json=[_ev(3), _ev(1, type="purchase")])
        assert r.status_code == 409, r.text
        assert "this sender already stored this event_id with other content" in r.json()["detail"]
        assert r.json()["problems"][0]["event_id"] == "e1"
        assert web.post("/events", json=[_ev(1)]).json()["duplicates"] == 1
    assert _rows(event_store) == 3  # e3 of the refused batch was not stored


def test_events_of_a_forgotten_user_are_refused_and_their_lists_not_recorded(
    ranking, event_store, data, tmp_path, monkeypatch
):
    from recsys_core.events.tables import served_recommendations
    from recsys_core.privacy.forget import forget_user

    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    victim = str(data.users.ids[5])
    forget_user(victim, url=event_store.url, data_dir=tmp_path / "data", tracking=False)
    app, client = _client(event_store, events_url=event_store.url)
    with client:
        app.state.forgotten.check()
        app.state.live.refresh()
        r = client.post("/events", json=[_ev(1), _ev(2, user_id=victim)])
        assert r.status_code == 422
        assert f"user {victim!r} was forgotten" in r.json()["detail"]
        assert [p["index"] for p in r.json()["problems"]] == [1]
        assert client.get(f"/recommendations/{victim}").status_code == 200
        assert app.state.recorder.flush()
    assert _rows(event_store) == 0
    with event_store.engine.connect() as conn:
        users = conn.execute(select(served_recommendations.c.user_id)).scalars().all()
    assert victim not in users
