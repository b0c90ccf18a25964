"""The columns of the ``events`` table as revision 0001 created them, for the migrations that
create that table: 0001 itself, and 0004, which rebuilds it on SQLite (with a sender column
and another primary key) and, going down, rebuilds it again as it was.

A record of the past, like the migrations that import it: a later change to the events table
is a new migration, never an edit here.
"""

from __future__ import annotations

import sqlalchemy as sa


def event_columns_0001() -> list[sa.schema.SchemaItem]:
    """``event_id`` (not null; the caller declares the primary key) and the event's fields,
    with the check on ``type``: new objects on every call, as a table takes ownership of its
    columns."""
    return [
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("rating", sa.Float, nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("recommendation_id", sa.String(128), nullable=True),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "type IN ('rating', 'click', 'view', 'purchase')", name="ck_events_type"
        ),
    ]
