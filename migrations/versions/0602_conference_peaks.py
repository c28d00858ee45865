"""daily peaks of live conferences and terminal presences by time, for the statistics

``conference_peaks`` keeps, per day of conference starts (``day``: days since 1970-01-01 of
UTC+8 time, see ``scheduling.rollup.PEAK_DAY_OFFSET``) and per group of each grouping (all,
unit, district, department, kind, mode), the most conferences live at one instant among
that day's held-by-video occurrences, and the span of their events. Derived by
``scheduling.rollup.refresh`` with the summaries (all days at its first run after this).
Also an index of the terminals' presences by join time (``GET /stats/terminals``).

Revision ID: 0602
Revises: 0601
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rooms.db

revision: str = "0602"
down_revision: str | Sequence[str] | None = "0601"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = rooms.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conference_peaks",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("grouping", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.Column("first_at", UTC, nullable=False),
        sa.Column("last_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("grouping", "day", "key", name=op.f("pk_conference_peaks")),
    )
    with op.batch_alter_table("attendance") as batch:
        batch.create_index(
            "ix_attendance_terminal",
            ["terminal_id", "joined_at"],
            unique=False,
            postgresql_where=sa.text("terminal_id IS NOT NULL"),
            sqlite_where=sa.text("terminal_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("attendance") as batch:
        batch.drop_index("ix_attendance_terminal")
    op.drop_table("conference_peaks")
