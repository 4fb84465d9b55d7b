"""Mail fixtures: a real SMTP server on loopback."""

from __future__ import annotations

import pytest

from tests.notifications.helpers import SmtpServer


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_settings(settings, smtp):
    return smtp.settings(settings)
