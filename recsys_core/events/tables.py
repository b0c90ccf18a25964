"""The tables of the event store (SQLAlchemy Core), as the latest migration leaves them.

``events``: one row per interaction a user had, keyed by its ``sender`` (the name of the API key
that posted it; empty without a key) and the ``event_id`` that sender chose (so that re-sending
a batch stores nothing twice, and no sender can take another's ids). ``timestamp`` is when it
happened and ``received_at`` when the store committed it, both in seconds since the epoch
(UTC), the unit of the canonical interaction table. ``served_recommendations``: one row per list
the service returned, and the sender that asked for it, so that events carrying its
``recommendation_id`` (from that same sender) can be traced to the model version that produced
the list (click-through per version).

``tombstones``: one row per forgotten user, holding a keyed hash of the id (never the id, see
``recsys_core.privacy.forget.user_key``); collection and the service drop every user whose key
is there. ``forget_audit``: append-only, one row per ``recsys forget``: when, who, why, and what
was removed where (JSON), with the same hash in place of the id.

``api_keys``: one row per API key of the service (``recsys_core.events.keys``): its name, its
scopes and a keyed hash of the key (never the key); a revoked key keeps its row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

EVENT_TYPES = ("rating", "click", "view", "purchase")

events = Table(
    "events",
    metadata,
    Column("sender", String(64), primary_key=True, server_default=""),
    Column("event_id", String(128), primary_key=True),
    Column("user_id", String(256), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("rating", Float, nullable=True),
    Column("type", String(16), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("recommendation_id", String(128), nullable=True),
    Column("received_at", BigInteger, nullable=False),
    # incremental collection reads (timestamp, sender, event_id) > watermark
    Index("ix_events_timestamp_sender_event_id", "timestamp", "sender", "event_id"),
    Index("ix_events_recommendation_id", "recommendation_id"),
    Index("ix_events_user_id", "user_id"),  # forgetting a user deletes their rows
)

served_recommendations = Table(
    "served_recommendations",
    metadata,
    Column("recommendation_id", String(128), primary_key=True),
    Column("user_id", String(256), nullable=False),
    Column("registered_model", String(256), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("alias", String(128), nullable=True),
    Column("k", Integer, nullable=False),
    Column("items", Text, nullable=False),  # JSON list of item ids, in rank order
    Column("served_at", BigInteger, nullable=False),
    # who asked for the list (its API key's name): only that sender's events count as its
    # clicks (``EventStore.click_through``)
    Column("sender", String(64), nullable=False, server_default=""),
    Index("ix_served_model_version", "registered_model", "model_version"),
)

tombstones = Table(
    "tombstones",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("user_key", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "id" or "pseudonym": what was hashed
    Column("created_at", BigInteger, nullable=False),
)

forget_audit = Table(
    "forget_audit",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("user_key", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("outcome", String(16), nullable=False),  # done, partial, nothing-found
    Column("detail", Text, nullable=False),  # JSON: rows removed per place, versions, snapshots
    Index("ix_forget_audit_user_key", "user_key"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),  # HMAC-SHA256, hex
    Column("scopes", String(128), nullable=False),  # comma-separated
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

VERSION_TABLE = "recsys_events_alembic_version"
"""Alembic's version table of the event store, named apart from any other tool's in the same
database (MLflow keeps its own ``alembic_version``)."""
