"""`ptmatch api-key` prints a working key once."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from ptmatch.cli import main
from ptmatch.domain import api
from ptmatch.models import ApiKey
from tests.conftest import NOW
from tests.factories import make_network


def test_cli_creates_a_key_for_the_practice(session, settings, monkeypatch, tmp_path):
    net = make_network(session)
    session.commit()
    monkeypatch.setenv("PTMATCH_DATABASE_URL", settings.DATABASE_URL)
    monkeypatch.setenv("PTMATCH_INSTANCE_PATH", str(tmp_path))
    result = CliRunner().invoke(
        main, ["api-key", "--practice", net.x.slug, "--scope", "slots:read"]
    )
    assert result.exit_code == 0, result.output
    raw = result.output.strip()
    session.rollback()
    key = api.authenticate(session, NOW, raw)
    assert key is not None and key.practice_id == net.x.id and key.scopes == "slots:read"
    missing = CliRunner().invoke(main, ["api-key", "--practice", "nope"])
    assert missing.exit_code != 0 and "nope" in missing.output
    assert len(session.scalars(select(ApiKey)).all()) == 1
