"""Events keyed by (sender, event_id): each sender (the name of its API key) has its own
event ids, so that one sender cannot take another's ids. Existing rows get the empty sender
(events stored before keys, or by ``recsys serve --no-auth``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsys_core.events.migrations.event_columns import event_columns_0001

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


_INDEXES = {
    "ix_events_timestamp_event_id": ["timestamp", "event_id"],
    "ix_events_recommendation_id": ["recommendation_id"],
    "ix_events_user_id": ["user_id"],
}
_COLUMNS = "event_id, user_id, item_id, rating, type, timestamp, recommendation_id, received_at"


def _sqlite_events(primary_key: list[str], sender: bool) -> None:
    """SQLite changes no primary key in place: the table is made anew and its rows copied."""
    for name in _INDEXES:
        op.drop_index(name, "events")
    op.rename_table("events", "events_old")
    op.create_table(
        "events",
        *(
            [sa.Column("sender", sa.String(64), nullable=False, server_default="")]
            if sender
            else []
        ),
        *event_columns_0001(),
        sa.PrimaryKeyConstraint(*primary_key, name="pk_events"),
    )
    keep = (
        ""
        if sender
        else " WHERE sender = '' OR event_id NOT IN (SELECT event_id FROM "
        "events_old WHERE sender = '')"
    )
    op.execute(f"INSERT OR IGNORE INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_old{keep}")
    op.drop_table("events_old")
    for name, columns in _INDEXES.items():
        op.create_index(name, "events", columns)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_events(["sender", "event_id"], sender=True)
        return
    op.add_column("events", sa.Column("sender", sa.String(64), nullable=False, server_default=""))
    op.drop_constraint("events_pkey", "events", type_="primary")
    op.create_primary_key("pk_events", "events", ["sender", "event_id"])


def downgrade() -> None:
    # an id used by several senders keeps one row (the empty sender's when there is one)
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_events(["event_id"], sender=False)
        return
    op.execute(
        "DELETE FROM events a USING events b WHERE a.event_id = b.event_id AND a.sender > b.sender"
    )
    op.drop_constraint("pk_events", "events", type_="primary")
    op.create_primary_key("events_pkey", "events", ["event_id"])
    op.drop_column("events", "sender")
