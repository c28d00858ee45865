"""guests, chat and recordings of conferences: meeting passcodes, the conference log,
recordings

``meetings.passcode``: the digits guests type to ask to join (NULL: no guest access).
Meetings created before this migration get none: their guest access stays off until the
secretariat sets a passcode; new meetings get a random one.
``conference_log``: chat messages and chair controls of each occurrence's conference.
``recordings``: one row per recording, its files under the recordings directory.

Revision ID: 0801
Revises: 0701
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rooms.db

revision: str = "0801"
down_revision: str | Sequence[str] | None = "0701"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = rooms.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.add_column(sa.Column("passcode", sa.String(length=10), nullable=True))
    op.create_table(
        "conference_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", UTC, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column(
            "kind",
            sa.Enum("chat", "control", name="logkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("actor_identity", sa.String(length=100), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("target_identity", sa.String(length=100), nullable=True),
        sa.Column("target_name", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE",
            name=op.f("fk_conference_log_meeting_id_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conference_log")),
    )  # fmt: skip
    op.create_index(
        "ix_conference_log_meeting_id_at", "conference_log", ["meeting_id", "at"], unique=False
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", UTC, nullable=False),
        sa.Column("conference", sa.String(length=100), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("started_by_name", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("stopped_at", UTC, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "recording", "ready", "failed", name="recordingstatus", native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("directory", sa.String(length=500), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=True),
        sa.Column("participants", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE",
            name=op.f("fk_recordings_meeting_id_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )  # fmt: skip
    op.create_index(op.f("ix_recordings_meeting_id"), "recordings", ["meeting_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_recordings_meeting_id"), table_name="recordings")
    op.drop_table("recordings")
    op.drop_index("ix_conference_log_meeting_id_at", table_name="conference_log")
    op.drop_table("conference_log")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_column("passcode")
