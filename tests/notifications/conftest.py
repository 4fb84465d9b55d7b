"""Mail fixtures: links from the test BASE_URL, and a real SMTP server on loopback."""

from __future__ import annotations

import pytest

from ptmatch.notifications import outbox
from tests.notifications.helpers import SmtpServer


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    outbox.configure(settings)


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_settings(settings, smtp):
    return smtp.settings(settings)
