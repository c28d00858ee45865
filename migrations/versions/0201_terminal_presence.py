"""terminal presence (online, last seen, agent version) for the terminal control channel

Revision ID: 0201
Revises: 0002, 0101
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rooms.db

revision: str = "0201"
down_revision: str | Sequence[str] | None = ("0002", "0101")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "terminal_presence",
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("online_since", rooms.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", rooms.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("agent_version", sa.String(length=100), nullable=True),
        sa.Column("conference", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_terminal_presence_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("terminal_id", name=op.f("pk_terminal_presence")),
    )


def downgrade() -> None:
    op.drop_table("terminal_presence")
