from __future__ import annotations

import json

from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.events import EventStore

runner = CliRunner()


def served(store, rec_id, version, model="recsys"):
    store.record_served(
        rec_id, user_id="u1", items=["a", "b"], registered_model=model, model_version=version
    )


def test_report_prints_the_click_through_per_version(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    store = EventStore(url)
    store.upgrade()
    for i in range(4):
        served(store, f"r1-{i}", "1")
    for i in range(2):
        served(store, f"r2-{i}", "2")
    served(store, "other", "1", model="another")
    # two lists of v1 clicked (one twice), one of v2 bought; a view engages nothing
    store.append(
        [
            {
                "event_id": "c1",
                "user_id": "u1",
                "item_id": "a",
                "type": "click",
                "recommendation_id": "r1-0",
            },
            {
                "event_id": "c2",
                "user_id": "u1",
                "item_id": "b",
                "type": "click",
                "recommendation_id": "r1-0",
            },
            {
                "event_id": "c3",
                "user_id": "u1",
                "item_id": "a",
                "type": "click",
                "recommendation_id": "r1-1",
            },
            {
                "event_id": "p1",
                "user_id": "u1",
                "item_id": "a",
                "type": "purchase",
                "recommendation_id": "r2-1",
            },
            {
                "event_id": "v1",
                "user_id": "u1",
                "item_id": "a",
                "type": "view",
                "recommendation_id": "r1-2",
            },
            {
                "event_id": "o1",
                "user_id": "u1",
                "item_id": "a",
                "type": "click",
                "recommendation_id": "other",
            },
        ]
    )
    store.close()
    out = runner.invoke(app, ["report", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    got = {r["model_version"]: (r["served"], r["engaged"], r["ctr"]) for r in body["versions"]}
    assert got == {"1": (4, 2, 0.5), "2": (2, 1, 0.5)}
    table = runner.invoke(app, ["report", "--model", "another"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "click-through" in table.output and "100.0%" in table.output


def test_report_without_tables_says_to_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    out = runner.invoke(app, ["report", "--url", url])
    assert out.exit_code != 0
    assert "recsys db upgrade" in out.output
    EventStore(url).upgrade()
    empty = runner.invoke(app, ["report", "--url", url])
    assert empty.exit_code == 0 and "no list of 'recsys' recorded" in empty.output
