"""occurrence replies and sent reminders; merges the meetings and mail-queue branches

``meeting_occurrence_replies`` holds attendees' answers to single occurrences of a series
(iTIP REPLY with RECURRENCE-ID); ``sent_reminders`` makes sure no occurrence's reminder is
ever sent twice. This revision depends on both 0002 (meetings) and 0101 (mail queue and
jobs), so the history is linear again after it.

Revision ID: 0102
Revises: 0101, 0002
Create Date: 2026-11-27 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rooms.db

revision: str = "0102"
down_revision: str | Sequence[str] | None = ("0101", "0002")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_occurrence_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "partstat",
            sa.Enum("NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", name="partstat",
                    native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("reply_sequence", sa.Integer(), nullable=False),
        sa.Column("reply_dtstamp", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE",
            name=op.f("fk_meeting_occurrence_replies_meeting_id_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"],
            name=op.f("fk_meeting_occurrence_replies_person_id_people"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_occurrence_replies")),
        sa.UniqueConstraint(
            "meeting_id", "person_id", "recurrence_id",
            name=op.f("uq_meeting_occurrence_replies_meeting_id_person_id_recurrence_id"),
        ),
    )
    with op.batch_alter_table("meeting_occurrence_replies") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_occurrence_replies_person_id"), ["person_id"]
        )
    op.create_table(
        "sent_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], ondelete="CASCADE",
            name=op.f("fk_sent_reminders_meeting_id_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_reminders")),
        sa.UniqueConstraint(
            "meeting_id", "recurrence_id",
            name=op.f("uq_sent_reminders_meeting_id_recurrence_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("sent_reminders")
    op.drop_table("meeting_occurrence_replies")
