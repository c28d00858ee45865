"""outgoing mail queue, scheduler lease, APScheduler job store

Revision ID: 0101
Revises: 0001
Create Date: 2026-11-27 06:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rooms.db

revision: str = "0101"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outgoing_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "sending", "sent", "failed", name="mailstatus", native_enum=False,
                    length=10),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", rooms.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_mail")),
    )
    with op.batch_alter_table("outgoing_mail") as batch_op:
        batch_op.create_index(batch_op.f("ix_outgoing_mail_meeting_id"), ["meeting_id"])
        batch_op.create_index(batch_op.f("ix_outgoing_mail_status"), ["status"])
        batch_op.create_index(batch_op.f("ix_outgoing_mail_next_attempt_at"), ["next_attempt_at"])
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", rooms.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_lease")),
    )
    # APScheduler's own table, exactly as its SQLAlchemyJobStore defines it.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("scheduler_lease")
    op.drop_table("outgoing_mail")
