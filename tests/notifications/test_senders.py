"""Senders: MIME layout and headers, .eml files, SMTP login and STARTTLS against aiosmtpd."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import replace
from email import message_from_bytes, policy

import pytest
from aiosmtpd.smtp import AuthResult

from ptmatch.config import ConfigError
from ptmatch.notifications.senders import (
    FileSender,
    SmtpSender,
    TransportError,
    build_message,
    envelope_for,
    make_sender,
)
from tests.factories import make_user
from tests.notifications.helpers import SmtpServer, enqueue_mail


def test_message_headers_and_parts(session, now, settings):
    row = enqueue_mail(session, now, user=make_user(session))
    msg = build_message(row, settings.MAIL_FROM)
    assert msg["From"] == settings.MAIL_FROM
    assert msg["To"] == row.to_addr
    assert msg["Subject"] == "Sie haben ein neues Terminangebot"
    assert msg["Message-ID"] == row.message_id
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Tue, 24 Nov 2026 09:00:00 +0000"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_same_row_builds_the_same_message_every_time(session, now, settings):
    row = enqueue_mail(session, now, user=make_user(session))
    first = build_message(row, settings.MAIL_FROM).as_bytes()
    assert build_message(row, settings.MAIL_FROM).as_bytes() == first


def test_file_sender_writes_one_eml_per_row(session, now, tmp_path, settings):
    row = enqueue_mail(session, now, user=make_user(session))
    sender = FileSender(tmp_path / "mail")
    envelope = envelope_for(row, settings.MAIL_FROM)
    sender.send(envelope)
    sender.send(envelope)  # a re-delivery overwrites, it does not duplicate
    files = list((tmp_path / "mail").glob("*.eml"))
    assert [f.name for f in files] == [f"20261124-090000-{row.id:08d}.eml"]
    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == row.message_id
    assert "https://ptmatch.test/o/abc" in parsed.get_body(("plain",)).get_content()


def test_file_sender_reports_unwritable_folder(session, now, tmp_path, settings):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    row = enqueue_mail(session, now, user=make_user(session))
    with pytest.raises(TransportError):
        FileSender(blocker / "mail").send(envelope_for(row, settings.MAIL_FROM))


def test_make_sender_picks_files_without_smtp_host(settings):
    assert isinstance(make_sender(settings), FileSender)
    assert isinstance(make_sender(replace(settings, SMTP_HOST="mail.example")), SmtpSender)


def test_smtp_sender_uses_envelope_sender_from_mail_from(session, now, smtp, smtp_settings):
    row = enqueue_mail(session, now, user=make_user(session))
    sender = SmtpSender(smtp_settings)
    sender.send(envelope_for(row, smtp_settings.MAIL_FROM))
    sender.close()
    envelope = smtp.inbox.envelopes[0]
    assert envelope.mail_from == "no-reply@ptmatch.invalid"
    assert envelope.rcpt_tos == [row.to_addr]


def test_smtp_login(session, now, settings):
    seen = []

    def authenticator(server, session_, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(
            success=auth_data.login == b"ptm" and auth_data.password == b"s3cret", handled=False
        )

    server = SmtpServer(authenticator=authenticator, auth_require_tls=False).start()
    try:
        row = enqueue_mail(session, now, user=make_user(session))
        sender = SmtpSender(server.settings(settings, SMTP_USER="ptm", SMTP_PASSWORD="s3cret"))
        sender.send(envelope_for(row, settings.MAIL_FROM))
        sender.close()
        bad = SmtpSender(server.settings(settings, SMTP_USER="ptm", SMTP_PASSWORD="wrong"))
        with pytest.raises(TransportError, match="authentication failed"):
            bad.send(envelope_for(row, settings.MAIL_FROM))
    finally:
        server.stop()
    assert len(server.inbox.messages) == 1
    assert (b"ptm", b"s3cret") in seen


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_smtp_starttls_with_private_ca(session, now, settings, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    server = SmtpServer(tls_context=context, require_starttls=True).start()
    try:
        row = enqueue_mail(session, now, user=make_user(session))
        sender = SmtpSender(
            server.settings(settings, SMTP_SECURITY="starttls", SMTP_CA_FILE=str(cert))
        )
        sender.send(envelope_for(row, settings.MAIL_FROM))
        sender.close()
        untrusted = SmtpSender(server.settings(settings, SMTP_SECURITY="starttls"))
        with pytest.raises(TransportError):  # the certificate is checked
            untrusted.send(envelope_for(row, settings.MAIL_FROM))
    finally:
        server.stop()
    assert server.inbox.message_ids() == [row.message_id]


def test_unknown_security_setting_is_refused(settings):
    with pytest.raises(ConfigError, match="SMTP_SECURITY"):
        SmtpSender(replace(settings, SMTP_HOST="x", SMTP_SECURITY="ssl3"))
