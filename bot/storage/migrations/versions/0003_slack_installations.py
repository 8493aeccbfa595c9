"""slack installations

``slack_installations``: one row per Slack workspace (or Enterprise Grid org) that
installed Briefbot through the OAuth flow; the installation (bot token included) is
stored encrypted. Additive: no existing row changes (channels are already keyed by
platform and the platform's own string ids, so Discord channels keep their data).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_installations")),
        sa.UniqueConstraint(
            "enterprise_id", "team_id", name=op.f("uq_slack_installations_enterprise_id_team_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("slack_installations")
