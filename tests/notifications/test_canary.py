"""Canary: a patient whose name and clinical text carry a unique marker, at a practice whose
name and address carry it too, goes through every flow that mails; no outbox subject or body,
no delivered byte and no URL inside a mail may contain the marker, the practice's name or
address, a clinical word, or any personal field of any patient (email, phone, birth date in
every format a template could print, postcode, id, pool pseudonym) or the therapist's name.
The recipient header is the only place an address may appear. The canary patient chose SMS
(a mobile number): every SMS text (offers, group offers, reminders, check-ins) is read the same
way, and the recipient number is the only place it may appear.

To cover a new flow, append a function decorated with @flow: it gets the World and must
cause at least one mail (the test fails if a flow sends nothing, so a canary never proves
nothing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch.catalog import PROBLEM_AREAS
from ptmatch.config import Settings
from ptmatch.domain import checkins, groups, offers, patients
from ptmatch.domain.access import pseudonym_of
from ptmatch.domain.accounts import send_reset_mails
from ptmatch.models import (
    GroupStatus,
    Modality,
    Offer,
    OutboxChannel,
    OutboxMessage,
    Patient,
    Practice,
    Preference,
    Role,
    Therapist,
    User,
)
from ptmatch.notifications import delivery
from ptmatch.notifications.senders import MemorySender
from ptmatch.scheduler.tasks.reminders import send_reminders
from ptmatch.scheduler.tasks.sweep import sweep
from tests.conftest import NOW
from tests.factories import (
    GROUP_START,
    make_group,
    make_patient,
    make_practice,
    make_therapist,
    make_user,
)
from tests.notifications.helpers import make_booking

MARKER = "Kanarienvogel7Q"
PATIENT_ID = 987_654  # distinctive, so it can be looked for in links and text
PROBLEMS = ("depression", "anxiety", "trauma", "self_harm")
CLINICAL_WORDS = {
    word.strip() for code in PROBLEMS for word in PROBLEM_AREAS.label(code).split("/")
}
CLINICAL_WORDS |= {"Suizid", "PTV 11", "Dringlichkeit"}


@pytest.fixture
def settings(settings, tmp_path):
    """SMS on (the file sender), so the canary's SMS are written and delivered too."""
    return dataclasses.replace(settings, SMS_SENDER="file", SMS_DIR=str(tmp_path / "sms"))


@dataclass
class World:
    session: Session
    client: FlaskClient
    now: dt.datetime
    settings: Settings
    practice: Practice
    therapist: Therapist
    patient: Patient


@pytest.fixture
def world(session, client, now, settings) -> World:
    practice = make_practice(
        session,
        name=f"Praxis {MARKER}",
        street=f"{MARKER}straße 5",
        booking_info=f"Klingel bei {MARKER}",
        phone="+49 228 5550123",
    )
    therapist = make_therapist(
        session, practice, user=make_user(session, Role.THERAPIST, display_name=f"Dr. {MARKER}")
    )
    patient = make_patient(
        session,
        user=make_user(session, display_name=f"Anna {MARKER}", email="anna.kanari@example.org"),
        id=PATIENT_ID,
        first_name=f"Anna{MARKER}",
        last_name=f"Muster{MARKER}",
        problems=PROBLEMS,
        phone="+4917055501234",
        sms_opt_in=True,
        birth_date=dt.date(1987, 3, 14),
        postcode="53229",
        description=f"Seit dem Unfall {MARKER} Suizidgedanken",
        urgent=True,
        lists=[practice],
    )
    session.commit()
    return World(session, client, now, settings, practice, therapist, patient)


FLOWS: list[Callable[[World], None]] = []


def flow(func: Callable[[World], None]) -> Callable[[World], None]:
    FLOWS.append(func)
    return func


@flow
def registration(w: World) -> None:
    patients.register_patient(
        w.session,
        w.now,
        email="bert.canary@example.org",
        password="ein sehr gutes passwort",
        profile=patients.Profile(
            first_name=f"Bert{MARKER}",
            last_name=f"Vogel{MARKER}",
            birth_date=dt.date(1990, 1, 2),
            postcode="53111",
            windows=[(0, 480, 1200)],
        ),
        intake=patients.Intake(
            problems=list(PROBLEMS),
            description=f"Albträume {MARKER}",
            urgent=True,
            urgency_code="PTV11X",
        ),
        consent_health=True,
        consent_rules=True,
        practice=w.practice,
    )


@flow
def already_registered(w: World) -> None:
    patients.register_patient(
        w.session,
        w.now,
        email=w.patient.user.email,
        password="ein sehr gutes passwort",
        profile=patients.Profile(
            first_name=f"Anna{MARKER}",
            last_name=f"Muster{MARKER}",
            birth_date=dt.date(1990, 1, 2),
            postcode="53111",
            windows=[(0, 480, 1200)],
        ),
        intake=patients.Intake(problems=["trauma"], description=f"{MARKER}"),
        consent_health=True,
        consent_rules=True,
        practice=w.practice,
    )


@flow
def password_reset(w: World) -> None:
    assert w.client.post("/auth/reset", data={"email": w.patient.user.email}).status_code == 302
    w.session.commit()  # a fresh snapshot: the request's row is committed
    send_reset_mails(w.session, w.now, w.settings)  # the scheduler writes the mail


@flow
def reminder(w: World) -> None:
    make_booking(
        w.session,
        w.patient,
        w.therapist,
        start_at=w.now + dt.timedelta(hours=20),
        created_at=w.now - dt.timedelta(days=5),
    )
    send_reminders(w.session, w.now, w.settings)


@flow
def english_reminder(w: World) -> None:
    w.patient.user.locale = "en"
    reminder(w)


@flow
def still_looking_checkin(w: World) -> None:
    w.patient.last_confirmed_at = w.now - dt.timedelta(days=60)
    w.session.flush()
    assert checkins.send_due_checkins(w.session, w.now, w.settings) == 1


def _post_auto_slot(w: World, patients_, hours: int = 30, **kw):
    """Auto mode: the first wave (to `patients_`, who fit and wait here) goes out at once."""
    return offers.post_slot(
        w.session,
        w.now,
        w.therapist.user,
        w.therapist,
        start_at=w.now + dt.timedelta(hours=hours),
        minutes=50,
        kind="sprechstunde",
        modality=kw.get("modality", "in_person"),
        mode="auto",
        settings=w.settings,
    )


def _offer_of(w: World, slot, patient):
    return w.session.scalar(
        select(Offer).where(Offer.slot_id == slot.id, Offer.patient_id == patient.id)
    )


@flow
def offer_accept_taken_booked(w: World) -> None:
    """Offer → accept → others taken → booking confirmed → practice told → other offer withdrawn."""
    rival = make_patient(
        w.session,
        id=PATIENT_ID + 1,
        first_name=f"Rival{MARKER}",
        problems=PROBLEMS,
        phone="+4917055505678",
        birth_date=dt.date(1979, 11, 23),
        lists=[w.practice],
    )
    later = _post_auto_slot(w, [w.patient, rival], hours=80)
    slot = _post_auto_slot(w, [w.patient, rival], hours=30)
    offers.accept_offer(w.session, w.now, _offer_of(w, slot, w.patient), w.patient.user, w.settings)
    kinds = {row.kind for row in w.session.scalars(select(OutboxMessage))}
    assert {"offer", "offer_taken", "booking_confirmed", "practice_outcome_booked"} <= kinds, kinds
    assert later.id != slot.id


@flow
def video_offer_and_patient_cancel(w: World) -> None:
    slot = _post_auto_slot(w, [w.patient], hours=54, modality="video")  # Thu 16:00 Berlin
    booking = offers.accept_offer(
        w.session, w.now, _offer_of(w, slot, w.patient), w.patient.user, w.settings
    )
    booking = booking[0] if isinstance(booking, tuple) else booking
    offers.cancel_booking_by_patient(w.session, w.now, w.patient.user, booking, w.settings)


@flow
def decline_expire_unfilled(w: World) -> None:
    slot = _post_auto_slot(w, [w.patient], hours=30)
    offers.decline_offer(
        w.session, w.now, _offer_of(w, slot, w.patient), w.patient.user, w.settings
    )
    sweep(w.session, w.now + dt.timedelta(hours=29), w.settings)


SOON = NOW + dt.timedelta(hours=47)  # inside the 48-hour decision time: decided at NOW


def _video_group(w: World, **kw):
    w.therapist.offers_group = True
    w.patient.group_pref = Preference.WANTED
    return make_group(w.session, w.therapist, modality=Modality.VIDEO, method="dbt", **kw)


def _kinds(w: World) -> set[str]:
    return {row.kind for row in w.session.scalars(select(OutboxMessage))}


@flow
def group_self_enrol_cancelled_below_minimum_and_rescheduled(w: World) -> None:
    """Issue 19: self-enrolment, the 48-hour decision below the minimum (the therapist's mail
    included) and the offer of the practice's next group of the same method."""
    # Decided now (mails due at once): the first session 47 hours ahead.
    small = _video_group(w, min_participants=3, first_session_at=SOON)
    _video_group(w, first_session_at=GROUP_START, title=f"Folge {MARKER}")
    groups.self_enrol(w.session, w.now, w.patient.user, small, w.patient, w.settings)
    assert groups.decide_group(w.session, w.now, small, w.settings) == GroupStatus.CANCELLED
    assert {"group_enrolled", "group_cancelled", "practice_group_cancelled", "group_offer"} <= (
        _kinds(w)
    )


@flow
def group_confirmed_then_cancel_button(w: World) -> None:
    """Issue 19: the decision to go ahead (mail to the therapist), then the practice's cancel
    button with a reason that must never reach a mail."""
    group = _video_group(
        w, min_participants=2, enrolled_count=1, title=f"Gruppe {MARKER}", first_session_at=SOON
    )
    groups.self_enrol(w.session, w.now, w.patient.user, group, w.patient, w.settings)
    assert groups.decide_group(w.session, w.now, group, w.settings) == GroupStatus.CONFIRMED
    groups.cancel_group(
        w.session,
        w.now,
        w.therapist.user,
        group,
        reason=f"{MARKER} erkrankt",
        confirmed=True,
        settings=w.settings,
    )
    assert {"practice_group_confirmed", "group_confirmed", "group_cancelled"} <= _kinds(w)


MONTHS_DE = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]


def _date_spellings(day: dt.date) -> set[str]:
    """Every way a template could print a birth date."""
    d, m, y = day.day, day.month, day.year
    en_month = day.strftime("%B")
    return {
        day.isoformat(),
        f"{d:02d}.{m:02d}.{y}",
        f"{d}.{m}.{y}",
        f"{d:02d}.{m:02d}.{y % 100:02d}",
        f"{m:02d}/{d:02d}/{y}",
        f"{d:02d}/{m:02d}/{y}",
        f"{m}/{d}/{y}",
        f"{d}/{m}/{y}",
        f"{y}{m:02d}{d:02d}",
        f"{d}. {MONTHS_DE[m - 1]} {y}",
        f"{d:02d}. {MONTHS_DE[m - 1]} {y}",
        f"{en_month} {d}, {y}",
        f"{day.strftime('%b')} {d}, {y}",
        f"{d} {en_month} {y}",
    }


def _phone_spellings(e164: str) -> set[str]:
    national = "0" + e164[3:] if e164.startswith("+49") else e164
    return {e164, e164[1:], national, national[:4] + " " + national[4:], e164[:3] + " " + e164[3:]}


def _patients(w: World) -> list[Patient]:
    w.session.expire_all()
    return list(w.session.scalars(select(Patient)))


def _forbidden(w: World) -> list[str]:
    """Words no subject, body or link may contain (case-insensitive)."""
    therapist_user = w.session.get(User, w.therapist.user_id)
    words = {
        MARKER,
        w.practice.name,
        w.practice.street,
        w.practice.phone,
        therapist_user.display_name,
        therapist_user.email,
        *CLINICAL_WORDS,
    }
    for patient in _patients(w):
        words |= {patient.first_name, patient.last_name, pseudonym_of(w.session, patient.id)}
        if patient.user_id:
            words.add(w.session.get(User, patient.user_id).email)
        if patient.phone:
            words |= _phone_spellings(patient.phone)
        if patient.birth_date:
            words |= _date_spellings(patient.birth_date)
        if patient.postcode and patient.postcode != w.practice.postcode:
            words.add(patient.postcode)
    return sorted(word for word in words if word)


def _patient_ids(w: World) -> set[str]:
    """Patient ids that must appear in no link and nowhere in a text (the canary's own are
    distinctive)."""
    return {str(PATIENT_ID), str(PATIENT_ID + 1)}


URL_RE = re.compile(r"""(?:https?://|/)[^\s"'<>]+""")


def _urls(text: str) -> list[str]:
    return [unquote(url) for url in URL_RE.findall(text or "")]


def _leaks(text: str, forbidden: list[str], ids: set[str]) -> list[str]:
    lowered = (text or "").lower()
    found = [word for word in forbidden if word.lower() in lowered]
    found += [pid for pid in ids if re.search(rf"(?<!\d){pid}(?!\d)", text or "")]
    return found


def _link_leaks(text: str, forbidden: list[str], ids: set[str]) -> list[str]:
    """Forbidden words in any URL (decoded), and patient ids as a path segment or query value."""
    found = []
    for url in _urls(text):
        parts = urlsplit(url)
        pieces = [seg for seg in parts.path.split("/") if seg]
        pieces += [
            value for pair in parse_qsl(parts.query, keep_blank_values=True) for value in pair
        ]
        pieces.append(parts.fragment)
        found += [f"{url}: {word}" for word in _leaks(url, forbidden, ids)]
        found += [f"{url}: id {piece}" for piece in pieces if piece in ids]
    return found


def _delivered_text(msg) -> str:
    """Every delivered byte except the recipient header, plus the decoded parts."""
    copy = email.message_from_string(msg.as_string(), policy=msg.policy)
    del copy["To"]
    raw = copy.as_string()
    for part in msg.walk():
        if not part.is_multipart():
            raw += part.get_content()
    return raw


@pytest.mark.parametrize("run_flow", FLOWS, ids=lambda f: f.__name__)
def test_no_name_practice_or_clinical_word_in_any_mail(run_flow, world, settings):
    run_flow(world)
    world.session.commit()
    rows = list(world.session.scalars(select(OutboxMessage)))
    assert rows, "this flow sent no mail: the canary proves nothing"
    forbidden, ids = _forbidden(world), _patient_ids(world)
    for row in rows:
        for part in (row.subject, row.body_text, row.body_html):
            assert not _leaks(part, forbidden, ids), (
                f"{row.kind} mail contains {_leaks(part, forbidden, ids)}"
            )
            assert not _link_leaks(part, forbidden, ids), (
                f"{row.kind} mail link: {_link_leaks(part, forbidden, ids)}"
            )
        assert _urls(row.body_text), f"{row.kind} mail has no link: the link check proves nothing"

    memory = MemorySender()
    delivery.deliver_due(world.session, world.now, settings, sender=memory, sms_sender=memory)
    assert len(memory.sent) + len(memory.sms) == len(rows)
    for msg in memory.sent:
        delivered = _delivered_text(msg)
        assert not _leaks(delivered, forbidden, ids)
        assert not _link_leaks(delivered, forbidden, ids)
    for envelope in memory.sms:  # the number is the recipient; the text carries nothing
        assert not _leaks(envelope.text, forbidden, ids), envelope.text
        assert not _link_leaks(envelope.text, forbidden, ids), envelope.text


SMS_FLOWS = {"reminder", "still_looking_checkin", "offer_accept_taken_booked"}


@pytest.mark.parametrize("run_flow", [f for f in FLOWS if f.__name__ in SMS_FLOWS], ids=str)
def test_the_canary_reads_sms_too(run_flow, world):
    """The flows that text the canary patient do write SMS rows (else the check above
    proves nothing about SMS)."""
    run_flow(world)
    world.session.commit()
    texts = world.session.scalars(
        select(OutboxMessage.body_text).where(OutboxMessage.channel == OutboxChannel.SMS)
    ).all()
    assert texts and all(_urls(text) for text in texts)


def test_the_canary_sees_a_birth_date_or_postcode_in_a_link(world):
    """The checks themselves: a link carrying ?plz=...&geb=... is caught in every spelling."""
    forbidden, ids = _forbidden(world), _patient_ids(world)
    for leak in (
        "?plz=53229",
        "?geb=14.03.1987",
        "?geb=1987-03-14",
        "?d=03%2F14%2F1987",
        f"/p/{PATIENT_ID}",
        "?m=anna.kanari%40example.org",
        "?t=%2B4917055501234",
        f"?ps={pseudonym_of(world.session, PATIENT_ID)}",
    ):
        text = f"Ihr Angebot: https://ptmatch.test/o/abc{leak}\n"
        assert _link_leaks(text, forbidden, ids), leak
    assert not _link_leaks("Ihr Angebot: https://ptmatch.test/o/abc123\n", forbidden, ids)
