"""Test helpers for mail: a real SMTP server on loopback (aiosmtpd), outbox rows, bookings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from sqlalchemy import select

from ptmatch.config import Settings
from ptmatch.models import Booking, BookingStatus, OutboxMessage, Slot, SlotStatus
from ptmatch.notifications import outbox
from tests.conftest import NOW


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every accepted message; refuses recipients listed in `refuse`."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        self.messages.append(
            message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        )
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`; can be started late and stopped (outages)."""

    def __init__(self, port: int | None = None, **smtp_kwargs) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        self.smtp_kwargs = smtp_kwargs
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, **self.smtp_kwargs
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def settings(self, settings: Settings, **extra) -> Settings:
        """`settings` pointing at this server (and `extra` changes)."""
        return dataclasses.replace(
            settings, SMTP_HOST="127.0.0.1", SMTP_PORT=self.port, SMTP_TIMEOUT=5, **extra
        )


def enqueue_mail(
    session,
    now=NOW,
    *,
    user=None,
    key: str = "test:1",
    kind: str = "offer",
    to_addr=None,
    when=None,
    link_path: str = "/o/abc",
) -> OutboxMessage:
    row = outbox.enqueue(
        session,
        now,
        kind=kind,
        dedupe_key=key,
        link_path=link_path,
        to_user=user,
        to_addr=to_addr,
        when=when,
    )
    assert row is not None
    return row


def fresh(session, row_id: int) -> OutboxMessage:
    """Re-read a row from the database (the delivery code updates with plain UPDATEs). Ends the
    session's transaction before and after: a SQLite read snapshot would hide later commits."""
    session.commit()
    session.expire_all()
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.id == row_id))
    session.commit()
    return row


def make_booking(
    session,
    patient,
    therapist,
    *,
    start_at: dt.datetime,
    created_at: dt.datetime | None = None,
    minutes: int = 50,
    status: BookingStatus = BookingStatus.CONFIRMED,
    **slot_fields,
) -> Booking:
    """A booked slot and its booking (no offer engine needed)."""
    slot = Slot(
        practice_id=therapist.practice_id,
        therapist_id=therapist.id,
        start_at=start_at,
        minutes=minutes,
        status=SlotStatus.BOOKED,
        offer_deadline_at=start_at - dt.timedelta(hours=2),
        created_at=(created_at or NOW) - dt.timedelta(hours=1),
        **slot_fields,
    )
    session.add(slot)
    session.flush()
    booking = Booking(
        slot_id=slot.id, patient_id=patient.id, status=status, created_at=created_at or NOW
    )
    session.add(booking)
    session.flush()
    return booking


def make_slot(
    session,
    therapist,
    *,
    start_at: dt.datetime,
    status: SlotStatus = SlotStatus.OFFERING,
    minutes: int = 50,
    **fields,
) -> Slot:
    slot = Slot(
        practice_id=therapist.practice_id,
        therapist_id=therapist.id,
        start_at=start_at,
        minutes=minutes,
        status=status,
        offer_deadline_at=start_at - dt.timedelta(hours=2),
        created_at=NOW,
        **fields,
    )
    session.add(slot)
    session.flush()
    return slot


def post_with_host(client, url: str, host: str, data: dict | None = None):
    """POST with a forged Host header, carrying the client's session cookie and a CSRF token
    (the test client only sends cookies to the host that set them)."""
    token = client.csrf_token()  # also puts the CSRF secret into the session cookie
    cookie = client.get_cookie("session")
    client.set_cookie("session", cookie.value, domain=host)
    return client.post(
        url, headers={"Host": host}, data={**(data or {}), "csrf_token": token}, csrf=False
    )
