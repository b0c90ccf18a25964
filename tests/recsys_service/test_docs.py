"""``/docs`` and ``/redoc`` work without a network: every asset they reference is served by the
service itself (a real uvicorn server, fetched over HTTP)."""

from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import httpx
import pytest

from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


class _Assets(HTMLParser):
    """The URLs of a page's scripts, stylesheets and icons, and the JavaScript inlined in it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self._in_script = True
            if a.get("src"):
                self.urls.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.urls.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline.append(data)


@pytest.mark.parametrize(
    "page, expected",
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),
        ("/redoc", {"redoc.standalone.js"}),
    ],
)
def test_api_pages_load_every_asset_from_the_service(
    store, model_name, live_server, page, expected
):
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        parsed = _Assets()
        parsed.feed(r.text)
        names = {urlparse(u).path.rsplit("/", 1)[-1] for u in parsed.urls}
        assert expected <= names, parsed.urls
        for url in parsed.urls:
            absolute = urljoin(server.url + page, url)
            # nothing from another host: the page must work where only the service is reachable
            assert urlparse(absolute).netloc == urlparse(server.url).netloc, url
            asset = client.get(absolute)
            assert asset.status_code == 200, (url, asset.status_code)
            assert len(asset.content) > 1000 or url.endswith(".png"), url
            assert asset.content, url
        # the OpenAPI document the page loads is this service's, on the same host
        assert "/openapi.json" in r.text and "https://" not in "".join(parsed.inline)
        assert client.get("/openapi.json").json()["info"]["title"] == "recsys"
