"""The event store: interactions recorded by the service, collected back for training.

How a service records a batch (``POST /events``)::

    store = EventStore()                 # once per process; RECSYS_EVENTS_URL or the default
    try:
        result = store.append(payload["events"])   # list of dicts, validated, committed
    except DataValidationError as exc:   # 422: nothing stored; exc.report lists every problem
        ...                              # (EventProblem: index, event_id, field, message)
    except DataSourceError as exc:       # 503: the database is down; nothing acknowledged
        ...
    # 200/201: result.received, result.stored, result.duplicates (re-sent ids)

and a served list, so that later events with its ``recommendation_id`` count towards the
click-through of the model version (``EventStore.click_through``)::

    store.record_served(rec_id, user_id=user, items=items, registered_model="recsys",
                        model_version=version, alias="champion-ranking")

Collection reads the table back through ``recsys_core.data.collect("postgresql://...?table=events")``
(see ``recsys_core.data.database``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys_core.events.engine import events_url
    from recsys_core.events.store import AppendResult, Event, EventProblem, EventStore

__all__ = ["AppendResult", "Event", "EventProblem", "EventStore", "events_url"]

# loaded at first use: a module of the package (``recsys_core.events.tombstones``, which every
# collection imports) must not cost SQLAlchemy's import (~0.3 s) where no event store is read
_WHERE = {
    "AppendResult": "recsys_core.events.store",
    "Event": "recsys_core.events.store",
    "EventProblem": "recsys_core.events.store",
    "EventStore": "recsys_core.events.store",
    "events_url": "recsys_core.events.engine",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
