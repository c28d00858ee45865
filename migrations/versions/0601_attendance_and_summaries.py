"""attendance (presences) and per-occurrence summaries for the statistics

``attendance`` holds one row per presence of a participant in an occurrence's conference;
``occurrence_summaries`` is the rollup the statistics read (one row per held occurrence,
rebuilt by ``scheduling.rollup.refresh``). Indexes: presences by occurrence and identity
(merging reconnections, the rollup's joins) and by ``left_at`` (open presences);
summaries by start (the statistics' date range) and by end (the refresh watermark).

Revision ID: 0601
Revises: 0102
Create Date: 2026-11-27 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rooms.db

revision: str = "0601"
down_revision: str | Sequence[str] | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = rooms.db.UTCDateTime(timezone=True)


def _occurrence_fk(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["meeting_id", "recurrence_id"],
        ["meeting_occurrences.meeting_id", "meeting_occurrences.recurrence_id"],
        name=name,
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", UTC, nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("terminal_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("identity", sa.String(length=100), nullable=False),
        sa.Column("client_kind", sa.String(length=20), nullable=False),
        sa.Column("joined_at", UTC, nullable=False),
        sa.Column("left_at", UTC, nullable=True),
        sa.Column("leave_reason", sa.String(length=40), nullable=True),
        sa.Column("segment_at", UTC, nullable=False),
        sa.Column("last_seen_at", UTC, nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("reconnects", sa.Integer(), nullable=False),
        sa.Column("join_offset_s", sa.Integer(), nullable=False),
        sa.Column("leave_offset_s", sa.Integer(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("loss_sum", sa.Float(), nullable=False),
        sa.Column("loss_max", sa.Float(), nullable=False),
        sa.Column("jitter_n", sa.Integer(), nullable=False),
        sa.Column("jitter_sum", sa.Float(), nullable=False),
        sa.Column("jitter_max", sa.Float(), nullable=False),
        sa.Column("rtt_n", sa.Integer(), nullable=False),
        sa.Column("rtt_sum", sa.Float(), nullable=False),
        sa.Column("rtt_max", sa.Float(), nullable=False),
        sa.Column("bitrate_sum", sa.Float(), nullable=False),
        sa.Column("bitrate_min", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["meeting_attendees.id"],
            name=op.f("fk_attendance_attendee_id_meeting_attendees"),
            ondelete="SET NULL",
        ),
        _occurrence_fk("fk_attendance_occurrence"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance")),
    )
    with op.batch_alter_table("attendance") as batch:
        batch.create_index(batch.f("ix_attendance_attendee_id"), ["attendee_id"], unique=False)
        batch.create_index(
            "ix_attendance_occurrence", ["meeting_id", "recurrence_id", "identity"], unique=False
        )
        batch.create_index("ix_attendance_open", ["left_at"], unique=False)

    op.create_table(
        "occurrence_summaries",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", UTC, nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("starts_at", UTC, nullable=False),
        sa.Column("ends_at", UTC, nullable=False),
        sa.Column("scheduled_s", sa.Integer(), nullable=False),
        sa.Column("by_video", sa.Boolean(), nullable=False),
        *[
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "invited", "accepted", "attended", "participants", "people", "presences",
                "participant_s", "late_joins", "early_leaves", "peak_participants",
            )
        ],
        sa.Column("conference_start", UTC, nullable=True),
        sa.Column("conference_end", UTC, nullable=True),
        *[
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "terminals_booked", "terminal_booked_s", "terminal_online_s",
                "q_good", "q_fair", "q_poor", "q_unknown",
            )
        ],
        sa.Column("loss_n", sa.Integer(), nullable=False),
        sa.Column("loss_sum", sa.Float(), nullable=False),
        sa.Column("loss_max", sa.Float(), nullable=False),
        sa.Column("rtt_n", sa.Integer(), nullable=False),
        sa.Column("rtt_sum", sa.Float(), nullable=False),
        sa.Column("rtt_max", sa.Float(), nullable=False),
        sa.Column("jitter_n", sa.Integer(), nullable=False),
        sa.Column("jitter_sum", sa.Float(), nullable=False),
        sa.Column("jitter_max", sa.Float(), nullable=False),
        sa.Column("bitrate_sum", sa.Float(), nullable=False),
        sa.Column("bitrate_min", sa.Float(), nullable=True),
        sa.Column("refreshed_at", UTC, nullable=False),
        _occurrence_fk("fk_occurrence_summaries_occurrence"),
        sa.PrimaryKeyConstraint(
            "meeting_id", "recurrence_id", name=op.f("pk_occurrence_summaries")
        ),
    )
    with op.batch_alter_table("occurrence_summaries") as batch:
        batch.create_index("ix_occurrence_summaries_starts_at", ["starts_at"], unique=False)
        batch.create_index("ix_occurrence_summaries_ends_at", ["ends_at"], unique=False)


def downgrade() -> None:
    op.drop_table("occurrence_summaries")
    op.drop_table("attendance")
