"""Served lists record who asked for them (``sender``: the name of the API key), so that
click-through counts an event quoting a list's ``recommendation_id`` only when the same sender
posted it; existing lists get the empty sender (lists served before keys, or by
``recsys serve --no-auth``). Collection reads events in (timestamp, sender, event_id) order:
its index follows.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("served_recommendations") as batch:
        batch.add_column(sa.Column("sender", sa.String(64), nullable=False, server_default=""))
    op.drop_index("ix_events_timestamp_event_id", "events")
    op.create_index(
        "ix_events_timestamp_sender_event_id", "events", ["timestamp", "sender", "event_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_events_timestamp_sender_event_id", "events")
    op.create_index("ix_events_timestamp_event_id", "events", ["timestamp", "event_id"])
    with op.batch_alter_table("served_recommendations") as batch:
        batch.drop_column("sender")
