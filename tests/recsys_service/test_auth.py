"""API keys with scopes on every route: no key, a wrong key, a key without the route's scope
and the right key, route by route; revocation in a running service; ``--no-auth``."""

import asyncio
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from typer.testing import CliRunner

from recsys_cli.main import app as cli
from recsys_core.events.keys import ADMIN, EXPLAIN, INGEST, RECOMMEND, SCOPES, KeyStore
from recsys_core.events.migrate import upgrade
from recsys_service.app import create_app
from recsys_service.auth import Authenticator
from recsys_service.settings import ServiceSettings


@pytest.fixture(scope="module")
def service(store, data, fit, publish, tmp_path_factory):
    """A service with a ranking and a rating champion, its keys in a store of its own."""
    publish(fit("sgd-mf", data, epochs=3, factors=8), store, "svc-auth")
    url = f"sqlite:///{tmp_path_factory.mktemp('auth') / 'events.db'}"
    upgrade(url)
    app = create_app(
        ServiceSettings(registered_model="svc-auth", events_url=url, key_cache_s=0.3), poll=False
    )
    with TestClient(app) as client:
        app.state.live.refresh()
        yield app, client, KeyStore(url)


def _routes(data):
    user, item = str(data.users.ids[0]), str(data.items.ids[0])
    event = {"event_id": "auth-e1", "user_id": user, "item_id": item, "type": "click"}
    # (method, url, JSON body, the scopes the route needs)
    return [
        ("GET", f"/recommendations/{user}?k=3", None, {RECOMMEND}),
        ("GET", f"/recommendations/{user}?k=3&explain=true", None, {RECOMMEND, EXPLAIN}),
        ("POST", "/recommendations", {"user_id": user, "k": 3}, {RECOMMEND}),
        (
            "POST",
            "/recommendations",
            {"user_id": user, "k": 3, "explain": True},
            {RECOMMEND, EXPLAIN},
        ),
        ("GET", f"/similar-items/{item}?k=3", None, {RECOMMEND}),
        ("GET", f"/predict?user_id={user}&item_id={item}", None, {RECOMMEND}),
        ("POST", "/events", [event], {INGEST}),
        ("GET", "/model", None, {ADMIN}),
        ("GET", "/metrics", None, {ADMIN}),
        ("POST", "/tombstones/refresh", None, {ADMIN}),
    ]


def _call(client, method, url, body, key=None):
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return client.request(method, url, json=body, headers=headers)


def test_every_route_needs_a_key_with_its_scope(service, data):
    app, client, keys = service
    for n, (method, url, body, needed) in enumerate(_routes(data)):
        where = f"{method} {url}"
        r = _call(client, method, url, body)
        assert r.status_code == 401, (where, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer"), where
        assert "an API key is required" in r.json()["detail"]
        r = _call(client, method, url, body, "rsk_" + "x" * 43)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
        assert "not valid" in r.json()["detail"], where
        for missing in needed:  # every other scope, but not this one
            lacking = keys.create(f"lacking-{n}-{missing}", set(SCOPES) - {missing})
            for _ in range(2):  # checked, then remembered: the same answer
                r = _call(client, method, url, body, lacking)
                assert r.status_code == 403, (where, r.text)
                assert f"lacks the scope {missing!r}" in r.json()["detail"], where
        right = keys.create(f"right-{n}", needed)
        for _ in range(2):
            r = _call(client, method, url, body, right)
            assert r.status_code == 200, (where, r.text)


def test_explain_needs_its_scope_even_for_a_remembered_key(service, data):
    _, client, keys = service
    key = keys.create("lists-only", [RECOMMEND])
    user = data.users.ids[1]
    assert _call(client, "GET", f"/recommendations/{user}", None, key).status_code == 200
    r = _call(client, "GET", f"/recommendations/{user}?explain=true", None, key)
    assert r.status_code == 403 and "'explain'" in r.json()["detail"]
    both = keys.create("lists-and-reasons", [RECOMMEND, EXPLAIN])
    r = _call(client, "GET", f"/recommendations/{user}?explain=true", None, both)
    assert r.status_code == 200 and r.json()["items"][0]["reasons"] is not None


def test_health_and_ready_need_no_key_and_the_openapi_declares_the_scheme(service):
    _, client, _ = service
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["api-key"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert spec["paths"]["/events"]["post"]["security"] == [{"api-key": ["ingest"]}]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_a_key_revoked_with_the_command_stops_working_in_a_running_service(
    service, data, live_server
):
    app, _, keys = service
    key = keys.create("soon-revoked", [RECOMMEND])
    user = data.users.ids[2]
    with live_server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get(f"/recommendations/{user}", headers=headers).status_code == 200
        r = CliRunner().invoke(cli, ["keys", "revoke", "soon-revoked", "--url", keys.url])
        assert r.exit_code == 0, r.output
        assert "revoked" in r.output
        deadline = time.monotonic() + 5
        while client.get(f"/recommendations/{user}", headers=headers).status_code == 200:
            assert time.monotonic() < deadline, "the revoked key kept working"
            time.sleep(0.05)
        assert client.get(f"/recommendations/{user}", headers=headers).status_code == 401


def test_no_auth_serves_anyone_and_is_refused_beyond_loopback(
    store, data, fit, publish, monkeypatch
):
    publish(fit("popularity", data), store, "svc-open")
    app = create_app(ServiceSettings(registered_model="svc-open", auth=False), poll=False)
    with TestClient(app) as client:
        app.state.live.refresh()
        assert client.get(f"/recommendations/{data.users.ids[0]}").status_code == 200
        assert client.get("/model").status_code == 200
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        r = CliRunner().invoke(cli, ["serve", "--no-auth", "--host", host])
        assert r.exit_code == 2, (host, r.output)
        assert "--no-auth" in r.output and "refused" in r.output
    monkeypatch.setenv("RECSYS_SERVE_AUTH", "false")  # the setting alone is refused as well
    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "refused" in r.output


def _request(*headers: tuple[bytes, bytes]) -> Request:
    return Request({"type": "http", "headers": [(b"host", b"svc"), *headers]})


@pytest.fixture
def authenticator(tmp_path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    upgrade(url)
    keys = KeyStore(url)
    yield Authenticator(keys, ttl_s=0.3), keys
    keys.close()


def test_the_fast_path_knows_a_key_only_once_verified_and_only_while_fresh(authenticator):
    auth, keys = authenticator
    key = keys.create("fast-path", [RECOMMEND])
    request = _request((b"authorization", f"Bearer {key}".encode()))
    assert auth.fast(request, RECOMMEND) is None  # never verified: the full check decides
    caller = asyncio.run(auth.verify(key))
    assert caller is not None and caller.name == "fast-path"
    assert auth.fast(request, RECOMMEND) == caller
    assert auth.fast(request, ADMIN) is None  # a scope the key lacks: the full check says 403
    # the spellings the full check accepts find the same key; anything else does not
    for header in (f"bearer {key}", f"BEARER  {key} "):
        assert auth.fast(_request((b"authorization", header.encode())), RECOMMEND) == caller
    for header in (f"Basic {key}", key, f"Bearer {key}x", "Bearer"):
        assert auth.fast(_request((b"authorization", header.encode())), RECOMMEND) is None
    assert auth.fast(_request(), RECOMMEND) is None
    # the first Authorization header counts, as in Starlette's Headers
    first = _request(
        (b"authorization", b"Bearer nope"), (b"authorization", f"Bearer {key}".encode())
    )
    assert auth.fast(first, RECOMMEND) is None
    # neither table holds the key, only hashes of it
    assert all(key.encode() not in mac for mac in auth._headers)
    assert all(key not in digest for digest in auth._cache)
    # revoked: once the answer is older than the cache time, the fast path lets go of it and
    # the full check asks the store again
    keys.revoke("fast-path")
    time.sleep(0.35)
    assert auth.fast(request, RECOMMEND) is None
    assert asyncio.run(auth.verify(key)) is None
    assert auth.fast(request, RECOMMEND) is None


def test_the_fast_path_table_stays_bounded(authenticator, monkeypatch):
    from recsys_service import auth as auth_module

    monkeypatch.setattr(auth_module, "_MAX_CACHED", 3)
    auth, keys = authenticator
    key = keys.create("bounded", [RECOMMEND])
    assert asyncio.run(auth.verify(key)) is not None
    for n in range(10):  # spellings of one key: each its own entry
        header = "Bearer " + key + " " * n
        assert auth.fast(_request((b"authorization", header.encode())), RECOMMEND) is not None
        assert len(auth._headers) <= 3


def test_a_busy_key_is_looked_up_again_before_its_answer_expires(tmp_path):
    """Requests in the last quarter of the answer's time start one look-up in the background:
    a busy key never sends its requests to the database, and a revocation still takes effect
    within the cache time (here before the old answer expires)."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    upgrade(url)
    keys = KeyStore(url)
    auth = Authenticator(keys, ttl_s=4.0)
    key = keys.create("busy", [RECOMMEND])
    digest = keys.digest(key)
    request = _request((b"authorization", f"Bearer {key}".encode()))

    async def scenario() -> None:
        caller = await auth.verify(key)
        first = auth._cache[digest][1]
        assert auth.fast(request, RECOMMEND) == caller and not auth._refreshing  # fresh
        await asyncio.sleep(3.2)
        assert auth.fast(request, RECOMMEND) == caller
        assert auth.fast(request, RECOMMEND) == caller
        assert len(auth._refreshing) == 1  # one look-up, however many requests
        await asyncio.gather(*auth._refreshing.values())
        assert auth._cache[digest][1] > first and auth.fast(request, RECOMMEND) == caller
        keys.revoke("busy")
        await asyncio.sleep(3.2)
        assert auth.fast(request, RECOMMEND) == caller  # the answer in hand, not expired
        await asyncio.gather(*auth._refreshing.values())
        assert auth.fast(request, RECOMMEND) is None
        assert await auth.verify(key) is None

    try:
        asyncio.run(scenario())
    finally:
        keys.close()
