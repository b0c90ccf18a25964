"""Looking for tombstones where no event store exists costs a path check, not SQLAlchemy."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from recsys_core.events.tombstones import drop_tombstoned, store_exists


def _by_sqlalchemy(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return os.path.exists(os.path.expanduser(parsed.database))
    return True


@pytest.mark.parametrize("exists", [False, True])
@pytest.mark.parametrize(
    "form",
    [
        "sqlite:///{rel}",
        "sqlite:///{abs}",
        "sqlite+pysqlite:///{rel}?mode=ro",
        "sqlite:///{abs}?timeout=5&uri=true",
        "sqlite:///{rel_escaped}",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "postgresql://user@localhost:5432/recsys_events",
    ],
)
def test_store_exists_reads_a_url_as_sqlalchemy_does(tmp_path, monkeypatch, form, exists):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub dir").mkdir()
    if exists:
        (tmp_path / "sub dir" / "events.db").write_bytes(b"")
    url = form.format(
        rel="sub dir/events.db",
        abs=str(tmp_path / "sub dir" / "events.db"),
        rel_escaped="sub%20dir/events.db",
    )
    assert store_exists(url) == _by_sqlalchemy(url)


def test_a_collection_without_an_event_store_loads_no_sqlalchemy(tmp_path):
    code = (
        "import sys\n"
        "import pandas as pd\n"
        "from recsys_core.events.tombstones import drop_tombstoned\n"
        "frame = pd.DataFrame({'user': ['a', 'b'], 'item': ['x', 'y'], 'rating': [1.0, 2.0]})\n"
        "kept, gone = drop_tombstoned(frame)\n"
        "print(len(kept), gone, 'sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # the default store, sqlite:///.recsys/events.db, does not exist here
        timeout=120,
    )
    assert out.stdout.split() == ["2", "0", "False"]


def test_an_empty_store_file_drops_nothing(tmp_path):
    # the file exists (SQLAlchemy is loaded to read it) but was never migrated
    (tmp_path / "events.db").write_bytes(b"")
    frame = pd.DataFrame({"user": ["a"], "item": ["x"], "rating": [1.0]})
    kept, gone = drop_tombstoned(frame, f"sqlite:///{tmp_path / 'events.db'}")
    assert gone == 0 and len(kept) == 1
