"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

import ptmatch.db
% if not down_revision:
from ptmatch.models import search
% endif

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
% if not down_revision:
    # The free-text search objects the models cannot declare (pg_trgm / FTS5).
    search.create(op.get_bind())
% endif


def downgrade() -> None:
% if not down_revision:
    search.drop(op.get_bind())
% endif
    ${downgrades if downgrades else "pass"}
