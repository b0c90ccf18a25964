"""The event store: interactions recorded by the service, collected back for training."""

from recsys_core.events.engine import events_url
from recsys_core.events.store import AppendResult, Event, EventProblem, EventStore

__all__ = ["AppendResult", "Event", "EventProblem", "EventStore", "events_url"]
