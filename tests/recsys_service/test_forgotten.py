"""A user forgotten while the service answers: dropped from the served model at once (on
``POST /tombstones/refresh``) or at the next poll, answered as a new user from then on, and not
brought back by a reload of a version that still holds them."""

import threading
import time

import httpx

from recsys_core.events import EventStore
from recsys_core.events.keys import KeyStore
from recsys_core.privacy.forget import forget_user
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


def _served_rows(url: str, user: str) -> int:
    from sqlalchemy import func, select

    from recsys_core.events.tables import served_recommendations as sr

    store = EventStore(url)
    with store.engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(sr).where(sr.c.user_id == user))
        out = int(n.scalar_one())
    store.close()
    return out


def _events(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    EventStore(url).upgrade()
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    return url


def test_a_user_forgotten_while_serving_is_answered_as_new(
    store, model_name, data, fit, publish, move, live_server, tmp_path, monkeypatch, key_headers
):
    url = _events(tmp_path, monkeypatch)
    model = fit("sgd-mf", data, epochs=3, factors=8)
    ref = publish(model, store, model_name)
    victim, other = str(data.users.ids[3]), str(data.users.ids[4])
    recent = [str(i) for i in data.items.ids[:3]]
    app = create_app(
        ServiceSettings(
            registered_model=model_name, poll_interval_s=0.2, events_url=url, forget_poll_s=600
        )
    )
    key = key_headers(app)
    # recsys forget tells the service with a key of the admin scope
    monkeypatch.setenv("RECSYS_SERVE_API_KEY", key["Authorization"].split()[1])
    errors: list = []
    stop = threading.Event()
    with live_server(app) as srv, httpx.Client(base_url=srv.url, timeout=30, headers=key) as client:
        before = client.get(f"/recommendations/{other}", params={"k": 5}).json()
        assert client.get(f"/recommendations/{victim}").json()["fallback"] is None

        def hammer() -> None:
            with httpx.Client(base_url=srv.url, timeout=30, headers=key) as c:
                while not stop.is_set():
                    for u in (victim, other):
                        r = c.get(f"/recommendations/{u}", params={"k": 5})
                        if r.status_code != 200:
                            errors.append(r.text)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            forget_user(
                victim, url=url, data_dir=tmp_path / "data", tracking=False, serve_url=srv.url
            )  # the refresh call drops the user at once
            gone = client.get(f"/recommendations/{victim}", params={"k": 5}).json()
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors
        assert gone["fallback"] == "popularity"
        after = client.get(f"/recommendations/{other}", params={"k": 5}).json()
        assert [i["item_id"] for i in after["items"]] == [i["item_id"] for i in before["items"]]
        folded = client.post(
            "/recommendations", json={"user_id": victim, "recent_items": recent, "k": 5}
        ).json()
        assert folded["fallback"] is None and folded["folded_in"] == 3  # fold-in, as new
        assert client.post("/tombstones/refresh").json() == {"dropped": 0, "tombstones": 1}
        # a new version that still holds the user: the reload drops them too
        again = publish(fit("sgd-mf", data, epochs=2, factors=4), store, model_name, aliases=())
        move(again, "champion-ranking")
        deadline = time.monotonic() + 30
        while client.get("/model").json()["ranking"]["version"] != again.version:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.get(f"/recommendations/{victim}").json()["fallback"] == "popularity"
        assert client.get(f"/recommendations/{other}").json()["fallback"] is None
        assert ref.version != again.version
        # the lists served to the forgotten user are no longer recorded under their id, while
        # the other user's lists still are (the recorder is working, not stalled)
        assert app.state.recorder.flush()  # what the hammering queued is written
        before_rows, other_rows = _served_rows(url, victim), _served_rows(url, other)
        for _ in range(3):
            client.get(f"/recommendations/{victim}")
            client.get(f"/recommendations/{other}")
        assert app.state.recorder.flush()
        assert _served_rows(url, victim) == before_rows
        assert _served_rows(url, other) == other_rows + 3


def test_the_poll_drops_a_user_without_being_told(
    store, model_name, data, fit, publish, live_server, tmp_path, monkeypatch, key_headers
):
    url = _events(tmp_path, monkeypatch)
    publish(fit("ease", data, reg=20.0), store, model_name)
    victim = str(data.users.ids[7])
    app = create_app(
        ServiceSettings(registered_model=model_name, events_url=url, forget_poll_s=0.2)
    )
    with (
        live_server(app) as srv,
        httpx.Client(base_url=srv.url, timeout=30, headers=key_headers(app)) as client,
    ):
        assert client.get(f"/recommendations/{victim}").json()["fallback"] is None
        forget_user(victim, url=url, data_dir=tmp_path / "data", tracking=False, serve_url="")
        deadline = time.monotonic() + 10
        while client.get(f"/recommendations/{victim}").json()["fallback"] != "popularity":
            assert time.monotonic() < deadline, "the poll never dropped the user"
            time.sleep(0.1)


def test_an_unreachable_event_store_keeps_serving(
    store, model_name, data, fit, publish, live_server, tmp_path, key_headers
):
    publish(fit("ease", data, reg=20.0), store, model_name)
    keys = f"sqlite:///{tmp_path / 'keys.db'}"  # the keys of a database that works
    app = create_app(
        ServiceSettings(
            registered_model=model_name,
            forget_poll_s=600,
            events_url="postgresql://recsys:pw@127.0.0.1:9/recsys_events",
        ),
        keys=KeyStore(keys),
    )
    with (
        live_server(app) as srv,
        httpx.Client(base_url=srv.url, timeout=30, headers=key_headers(keys)) as client,
    ):
        r = client.post("/tombstones/refresh")
        assert r.status_code == 503 and "tombstones cannot be read" in r.json()["detail"]
        assert "pw@" not in r.text
        assert client.get(f"/recommendations/{data.users.ids[0]}").status_code == 200
