"""Create the events and served_recommendations tables.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsys_core.events.migrations.event_columns import event_columns_0001

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("events", *event_columns_0001(), sa.PrimaryKeyConstraint("event_id"))
    op.create_index("ix_events_timestamp_event_id", "events", ["timestamp", "event_id"])
    op.create_index("ix_events_recommendation_id", "events", ["recommendation_id"])
    op.create_table(
        "served_recommendations",
        sa.Column("recommendation_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("registered_model", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(128), nullable=True),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("served_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_served_model_version", "served_recommendations", ["registered_model", "model_version"]
    )


def downgrade() -> None:
    op.drop_table("served_recommendations")
    op.drop_table("events")
