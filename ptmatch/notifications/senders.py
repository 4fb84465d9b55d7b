"""Senders: turn an outbox row into a MIME message and hand it to SMTP, a folder, or memory.

- `SmtpSender`: host, port, security (none / starttls / tls), user and password from the
  settings `SMTP_*`. One connection per delivery run, opened lazily and reused.
- `FileSender`: development without a mail server: one `.eml` file per outbox row under
  `MAIL_DIR` (the dev mailbox page reads them). Re-delivering a row overwrites its file.
- `MemorySender`: tests.

SMS (outbox rows of channel ``sms``) have senders of their own (``make_sms_sender``):
- `FileSmsSender`: development: one `.txt` file per SMS under `SMS_DIR`.
- `HttpSmsSender`: a gateway: POST JSON ``{"to", "text", "id"}`` to `SMS_GATEWAY_URL` with
  ``Authorization: Bearer SMS_GATEWAY_TOKEN``; 2xx is sent, 429 and 5xx are tried again, any
  other answer is permanent, no answer at all is a transport error.

Errors are sorted for the delivery loop: `TransportError` (the server is unreachable or
refuses us; the rest of the batch would fail the same way), `TemporaryError` (this message,
try again later), `PermanentError` (this message will never go through, e.g. 550 user unknown).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import smtplib
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

from ptmatch.config import Settings
from ptmatch.models import OutboxChannel, OutboxMessage


class SendError(Exception):
    """Delivery of one message failed."""


class TransportError(SendError):
    """The server cannot be reached or refuses the session: every message would fail now."""


class TemporaryError(SendError):
    """This message failed for now (4xx)."""


class PermanentError(SendError):
    """This message will never be accepted (5xx for its recipient or content)."""


@dataclass(frozen=True)
class Envelope:
    """A claimed row, detached from the database: the sender needs no session."""

    outbox_id: int
    to_addr: str
    created_at: dt.datetime
    message: EmailMessage | None  # a mail; None for an SMS
    channel: OutboxChannel = OutboxChannel.MAIL
    text: str = ""  # an SMS: its whole text

    @property
    def is_sms(self) -> bool:
        return self.channel == OutboxChannel.SMS


def build_message(row: OutboxMessage, mail_from: str) -> EmailMessage:
    """The MIME message of a row. Every delivery attempt yields the same bytes (Message-ID, Date,
    boundary)."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at.astimezone(dt.UTC))
    msg["Message-ID"] = row.message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
        # A boundary derived from the Message-ID: every attempt sends byte-identical mail.
        msg.set_boundary("=_ptm_" + hashlib.sha256(row.message_id.encode()).hexdigest()[:32])
    msg["Content-Language"] = row.locale or "de"  # after set_content, which drops Content-* headers
    return msg


def envelope_for(row: OutboxMessage, mail_from: str) -> Envelope:
    if row.channel == OutboxChannel.SMS:
        return Envelope(
            outbox_id=row.id,
            to_addr=row.to_addr,
            created_at=row.created_at,
            message=None,
            channel=OutboxChannel.SMS,
            text=row.body_text,
        )
    return Envelope(
        outbox_id=row.id,
        to_addr=row.to_addr,
        created_at=row.created_at,
        message=build_message(row, mail_from),
    )


class Sender:
    """Base class; a sender may hold a connection between `send` calls until `close`."""

    def send(self, envelope: Envelope) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemorySender(Sender):
    """Keeps every sent message in `sent` (tests)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.sms: list[Envelope] = []  # as an SMS sender

    def send(self, envelope: Envelope) -> None:
        if envelope.is_sms:
            self.sms.append(envelope)
        else:
            self.sent.append(envelope.message)


class FileSender(Sender):
    """Writes `<MAIL_DIR>/<created>-<outbox id>.eml`; atomic, and idempotent per row."""

    def __init__(self, mail_dir: str | os.PathLike) -> None:
        self.mail_dir = Path(mail_dir)

    @staticmethod
    def filename(envelope: Envelope) -> str:
        return (
            f"{envelope.created_at.astimezone(dt.UTC):%Y%m%d-%H%M%S}-{envelope.outbox_id:08d}.eml"
        )

    def send(self, envelope: Envelope) -> None:
        try:
            self.mail_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.mail_dir, prefix=".tmp-", suffix=".eml")
            with os.fdopen(fd, "wb") as fh:
                fh.write(envelope.message.as_bytes())
            os.replace(tmp, self.mail_dir / self.filename(envelope))
        except OSError as err:
            raise TransportError(f"cannot write to mail folder: {err.strerror or err}") from err


class SmtpSender(Sender):
    """Delivers over SMTP. Settings: SMTP_HOST, SMTP_PORT, SMTP_SECURITY (none|starttls|tls),
    SMTP_USER, SMTP_PASSWORD; optional SMTP_TIMEOUT (seconds) and SMTP_CA_FILE (a private CA).
    The settings were validated when they were built (SMTP_SECURITY is one of the three)."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.SMTP_HOST
        self.port = settings.SMTP_PORT
        self.security = settings.SMTP_SECURITY.lower()
        self.user = settings.SMTP_USER
        self.password = settings.SMTP_PASSWORD
        self.timeout = float(settings.SMTP_TIMEOUT or 20)
        self.ca_file = settings.SMTP_CA_FILE or None
        self.envelope_from = parseaddr(settings.MAIL_FROM)[1]
        self._conn: smtplib.SMTP | None = None

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.security == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._tls_context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                conn.ehlo()
                if self.security == "starttls":
                    conn.starttls(context=self._tls_context())
                    conn.ehlo()
                if self.user:
                    conn.login(self.user, self.password)
            except BaseException:
                conn.close()
                raise
        except smtplib.SMTPAuthenticationError as err:
            raise TransportError(f"SMTP authentication failed ({err.smtp_code})") from err
        except (smtplib.SMTPException, OSError) as err:
            raise TransportError(
                f"cannot connect to {self.host}:{self.port}: {_describe(err)}"
            ) from err
        return conn

    def send(self, envelope: Envelope) -> None:
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.send_message(
                envelope.message, from_addr=self.envelope_from, to_addrs=[envelope.to_addr]
            )
        except smtplib.SMTPRecipientsRefused as err:
            code, text = next(iter(err.recipients.values()), (0, b""))
            raise _by_code(code, f"recipient refused: {code} {_text(text)}") from err
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as err:
            raise _by_code(err.smtp_code, f"{err.smtp_code} {_text(err.smtp_error)}") from err
        except (smtplib.SMTPException, OSError) as err:
            self._drop()
            raise TransportError(f"connection lost: {_describe(err)}") from err

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]


def _by_code(code: int, message: str) -> SendError:
    return PermanentError(message) if 500 <= (code or 0) < 600 else TemporaryError(message)


class FileSmsSender(Sender):
    """Writes `<SMS_DIR>/<created>-<outbox id>.txt` (the number, a blank line, the text);
    atomic, and idempotent per row."""

    def __init__(self, sms_dir: str | os.PathLike) -> None:
        self.sms_dir = Path(sms_dir)

    @staticmethod
    def filename(envelope: Envelope) -> str:
        return (
            f"{envelope.created_at.astimezone(dt.UTC):%Y%m%d-%H%M%S}-{envelope.outbox_id:08d}.txt"
        )

    def send(self, envelope: Envelope) -> None:
        try:
            self.sms_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.sms_dir, prefix=".tmp-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"To: {envelope.to_addr}\n\n{envelope.text}\n")
            os.replace(tmp, self.sms_dir / self.filename(envelope))
        except OSError as err:
            raise TransportError(f"cannot write to SMS folder: {err.strerror or err}") from err


class HttpSmsSender(Sender):
    """Hands each SMS to an HTTP gateway (settings SMS_GATEWAY_URL, SMS_GATEWAY_TOKEN,
    SMS_TIMEOUT). The outbox id goes along, so a gateway can fold a re-sent duplicate."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.SMS_GATEWAY_URL
        self.token = settings.SMS_GATEWAY_TOKEN
        self.timeout = float(settings.SMS_TIMEOUT or 10)

    def send(self, envelope: Envelope) -> None:
        body = json.dumps(
            {"to": envelope.to_addr, "text": envelope.text, "id": envelope.outbox_id}
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "ptmatch-sms/1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise TransportError(f"SMS gateway unreachable: {_describe(err)}") from err
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            raise TemporaryError(f"SMS gateway: HTTP {status}")
        raise PermanentError(f"SMS gateway: HTTP {status}")


def make_sms_sender(settings: Settings) -> Sender | None:
    """The SMS sender of SMS_SENDER; None when SMS is off."""
    if settings.SMS_SENDER == "http":
        return HttpSmsSender(settings)
    if settings.SMS_SENDER == "file":
        return FileSmsSender(settings.SMS_DIR)
    return None


def make_sender(settings: Settings) -> Sender:
    """SMTP when SMTP_HOST is set, otherwise `.eml` files under MAIL_DIR."""
    if settings.SMTP_HOST:
        return SmtpSender(settings)
    return FileSender(settings.MAIL_DIR)
