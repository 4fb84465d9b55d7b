"""Issue 13: optional SMS. A patient who gave a mobile number and chose "Angebote auch per SMS"
gets a short SMS (a generic line and a link) for offers, reminders and check-ins: besides the
mail, or for a phone-only caller instead of it. SMS go through the outbox with its retries,
to a file sender (development) or an HTTP gateway (tested against a local server)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from ptmatch.config import ConfigError
from ptmatch.domain import checkins, offers, patients
from ptmatch.models import (
    CallTask,
    OfferMode,
    OutboxChannel,
    OutboxMessage,
    OutboxStatus,
    RegisteredVia,
)
from ptmatch.notifications import delivery, sms
from ptmatch.notifications.senders import FileSmsSender, HttpSmsSender, MemorySender
from ptmatch.scheduler.tasks.reminders import send_reminders
from tests.conftest import NOW
from tests.factories import (
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
)
from tests.notifications.helpers import make_booking
from tests.web.test_patient import FORM, post_form

MOBILE = "+4917055501234"
LANDLINE = "+492285550123"


@pytest.fixture
def settings(settings, tmp_path):
    """SMS on, written as files (the development sender); waves of one."""
    return dataclasses.replace(
        settings, SMS_SENDER="file", SMS_DIR=str(tmp_path / "sms"), WAVE_RULES=((None, 1, 240),)
    )


@pytest.fixture
def world(session):
    practice = make_practice(session)
    return practice, make_therapist(session, practice)


def _sms(session) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.channel == OutboxChannel.SMS)
            .order_by(OutboxMessage.id)
        )
    )


def _phone_only_caller(session, practice):
    """A caller the secretariat registered (no account) who chose SMS."""
    caller = make_patient(
        session,
        lists=[practice],
        phone=MOBILE,
        sms_opt_in=True,
        registered_via=RegisteredVia.SECRETARIAT,
        consent_recorded_by_id=make_secretary(session, [practice]).id,
    )
    caller.user_id = None
    session.flush()
    return caller


def _offer_to(session, settings, therapist, patient):
    slot = make_slot(session, therapist, offer_mode=OfferMode.AUTO)
    offers.send_next_wave(session, NOW, slot, settings)
    return slot


# --- who gets one ------------------------------------------------------------------------------


def test_an_offer_goes_by_mail_and_by_sms_to_a_patient_who_chose_it(session, settings, world):
    practice, therapist = world
    patient = make_patient(session, lists=[practice], phone=MOBILE, sms_opt_in=True)
    _offer_to(session, settings, therapist, patient)
    [row] = _sms(session)
    assert (row.kind, row.to_addr, row.user_id) == ("offer", MOBILE, patient.user_id)
    assert row.body_text.startswith("ptmatch: Sie haben ein neues Terminangebot.")
    assert "https://ptmatch.test/o/" in row.body_text
    assert row.subject == "" and row.body_html == ""
    assert len(row.body_text) <= 160  # one SMS
    mails = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == "offer", OutboxMessage.channel == OutboxChannel.MAIL
        )
    ).all()
    assert len(mails) == 1


def test_a_phone_only_caller_gets_the_sms_instead_of_a_mail_beside_the_call(
    session, settings, world
):
    practice, therapist = world
    caller = _phone_only_caller(session, practice)
    _offer_to(session, settings, therapist, caller)
    [row] = _sms(session)
    assert (row.to_addr, row.user_id, row.locale) == (MOBILE, None, "de")
    assert session.scalar(select(CallTask).where(CallTask.patient_id == caller.id)) is not None
    assert session.query(OutboxMessage).filter_by(channel=OutboxChannel.MAIL).count() == 0


def test_no_sms_without_the_choice_or_with_sms_off(session, settings, world):
    practice, therapist = world
    make_patient(session, lists=[practice], phone=MOBILE, sms_opt_in=False)
    _offer_to(session, settings, therapist, None)
    assert _sms(session) == []
    session.info["settings"] = dataclasses.replace(settings, SMS_SENDER="none")
    patient = make_patient(session, lists=[practice], phone=MOBILE, sms_opt_in=True)
    _offer_to(session, settings, therapist, patient)
    assert _sms(session) == []


def test_reminders_and_checkins_go_by_sms(session, settings, world):
    practice, therapist = world
    patient = make_patient(session, lists=[practice], phone=MOBILE, sms_opt_in=True)
    make_booking(
        session, patient, therapist, start_at=NOW + dt.timedelta(hours=20),
        created_at=NOW - dt.timedelta(days=5),
    )  # fmt: skip
    send_reminders(session, NOW, settings)
    patient.last_confirmed_at = NOW - dt.timedelta(days=60)
    session.flush()
    checkins.send_due_checkins(session, NOW, settings)
    kinds = [row.kind for row in _sms(session)]
    assert kinds == ["reminder", "checkin"]
    send_reminders(session, NOW, settings)  # a job that runs twice sends nothing twice
    assert len(_sms(session)) == 2


# --- the choice in the profile -----------------------------------------------------------------


def _profile(phone: str, sms_on: bool) -> patients.Profile:
    return patients.Profile(
        first_name="Greta",
        last_name="Beispiel",
        birth_date=dt.date(1990, 1, 2),
        postcode="53111",
        phone=phone,
        sms=sms_on,
        windows=[(0, 480, 600)],
    )


def test_sms_needs_a_mobile_number(session):
    today = NOW.date()

    def sms_problems(profile):
        return [p for p in patients.profile_problems(session, today, profile) if p.field == "sms"]

    mobile = _profile("0170 5550123", True)
    assert not sms_problems(mobile) and mobile.sms
    for phone in (LANDLINE, ""):
        assert [p.field for p in sms_problems(_profile(phone, True))] == ["sms"]
    landline = _profile(LANDLINE, False)
    assert not sms_problems(landline) and not landline.sms


def test_the_profile_form_offers_sms_and_explains_a_landline(client, session, sessions, login_as):
    patient = make_patient(session, phone=MOBILE)
    session.commit()
    login_as(patient.user)
    assert "Angebote auch per SMS" in client.get("/patient/profil").get_data(as_text=True)
    response = post_form(client, "/patient/profil", phone="0228 5550123", sms="y")
    assert response.status_code == 200
    assert "diese Nummer ist keine" in response.get_data(as_text=True)
    assert post_form(client, "/patient/profil", sms="y").status_code == 302
    with sessions() as s:
        saved = s.get(type(patient), patient.id)
        assert saved.sms_opt_in and saved.phone == patients.normalise_phone(FORM["phone"])


# --- delivery ----------------------------------------------------------------------------------


def test_the_file_sender_writes_each_sms_once(session, settings, world):
    practice, therapist = world
    make_patient(session, lists=[practice], phone=MOBILE, sms_opt_in=True)
    _offer_to(session, settings, therapist, None)
    session.commit()
    mail = MemorySender()
    assert delivery.deliver_due(session, NOW, settings, sender=mail) == 2  # the mail, the SMS
    assert len(mail.sent) == 1 and mail.sms == []
    [path] = Path(settings.SMS_DIR).glob("*.txt")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"To: {MOBILE}\n\nptmatch: ")
    assert "https://ptmatch.test/o/" in text
    assert FileSmsSender.filename  # one file per row: a second run writes nothing new
    assert delivery.deliver_due(session, NOW, settings, sender=mail) == 0


class _Gateway(BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[dict, str]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    _Gateway.answers, _Gateway.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_http_gateway_gets_json_with_the_token_and_failures_are_retried(
    session, settings, world, gateway
):
    http = dataclasses.replace(
        settings,
        SMS_SENDER="http",
        SMS_GATEWAY_URL=f"http://127.0.0.1:{gateway.server_port}/send",
        SMS_GATEWAY_TOKEN="gw-token-123",
    )
    practice, therapist = world
    make_patient(session, lists=[practice], phone=MOBILE, sms_opt_in=True)
    _offer_to(session, http, therapist, None)
    session.commit()
    [row] = _sms(session)
    _Gateway.answers = [503]
    mail = MemorySender()
    delivery.deliver_due(session, NOW, http, sender=mail)
    session.expire_all()
    row = session.get(OutboxMessage, row.id)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert "503" in row.last_error and row.next_attempt_at > NOW
    later = row.next_attempt_at
    assert delivery.deliver_due(session, later, http, sender=mail) == 1
    session.expire_all()
    assert session.get(OutboxMessage, row.id).status == OutboxStatus.SENT
    (first, auth), (second, _auth) = _Gateway.received
    assert auth == "Bearer gw-token-123"
    assert first == second == {"to": MOBILE, "text": row.body_text, "id": row.id}


def test_a_refused_sms_is_dead_and_an_unreachable_gateway_waits(settings, gateway):
    from ptmatch.notifications.senders import Envelope, PermanentError, TransportError

    http = dataclasses.replace(
        settings, SMS_SENDER="http", SMS_GATEWAY_URL=f"http://127.0.0.1:{gateway.server_port}/"
    )
    envelope = Envelope(1, MOBILE, NOW, None, OutboxChannel.SMS, "ptmatch: x")
    _Gateway.answers = [400]
    with pytest.raises(PermanentError):
        HttpSmsSender(http).send(envelope)
    closed = dataclasses.replace(http, SMS_GATEWAY_URL="http://127.0.0.1:9/")
    with pytest.raises(TransportError):
        HttpSmsSender(closed).send(envelope)


def test_sms_settings_are_checked(settings):
    with pytest.raises(ConfigError):
        dataclasses.replace(settings, SMS_SENDER="carrier-pigeon")
    with pytest.raises(ConfigError):
        dataclasses.replace(settings, SMS_SENDER="http", SMS_GATEWAY_URL="")


def test_every_sms_kind_has_a_short_line():
    for kind in sms.LINES:
        text = sms.render(kind, "de", "https://ptmatch.example.org/o/" + "x" * 43)
        assert len(text) <= 160, kind
        assert len(sms.render(kind, "en", "https://x.test/o/abc")) <= 160


def test_erasure_removes_every_sms_to_the_number(session, settings, world):
    """A phone-only caller has no account: their SMS rows are found by the number."""
    practice, therapist = world
    caller = _phone_only_caller(session, practice)
    _offer_to(session, settings, therapist, caller)
    assert len(_sms(session)) == 1
    patients.erase_personal_data(session, NOW, caller, None, reason="test", settings=settings)
    session.flush()
    assert _sms(session) == []
    assert (caller.phone, caller.sms_opt_in) == ("", False)
