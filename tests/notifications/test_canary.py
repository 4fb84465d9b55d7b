"""Canary: a patient whose name and clinical text carry a unique marker, at a practice whose
name and address carry it too, goes through every flow that mails; no outbox subject or body,
and no delivered byte, may contain the marker, the practice's name or a clinical word.

To cover a new flow, append a function decorated with @flow: it gets the World and must
cause at least one mail (the test fails if a flow sends nothing, so a canary never proves
nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch.catalog import PROBLEM_AREAS
from ptmatch.config import Settings
from ptmatch.domain import checkins, offers, patients
from ptmatch.models import Offer, OutboxMessage, Patient, Practice, Role, Therapist
from ptmatch.notifications import delivery
from ptmatch.notifications.senders import MemorySender
from ptmatch.scheduler.tasks.reminders import send_reminders
from ptmatch.scheduler.tasks.sweep import sweep
from tests.factories import make_patient, make_practice, make_therapist, make_user
from tests.notifications.helpers import make_booking

MARKER = "Kanarienvogel7Q"
PROBLEMS = ("depression", "anxiety", "trauma", "self_harm")
CLINICAL_WORDS = {word.strip() for code in PROBLEMS for word in PROBLEM_AREAS.label(code).split("/")}
CLINICAL_WORDS |= {"Suizid", "PTV 11", "Dringlichkeit"}


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
    practice = make_practice(session, name=f"Praxis {MARKER}", street=f"{MARKER}straße 5",
                             booking_info=f"Klingel bei {MARKER}", phone="+49 228 5550123")
    therapist = make_therapist(session, practice, user=make_user(session, Role.THERAPIST, display_name=f"Dr. {MARKER}"))
    patient = make_patient(session, user=make_user(session, display_name=f"Anna {MARKER}"),
                           first_name=f"Anna{MARKER}", last_name=f"Muster{MARKER}", problems=PROBLEMS,
                           description=f"Seit dem Unfall {MARKER} Suizidgedanken", urgent=True, lists=[practice])
    session.commit()
    return World(session, client, now, settings, practice, therapist, patient)


FLOWS: list[Callable[[World], None]] = []


def flow(func: Callable[[World], None]) -> Callable[[World], None]:
    FLOWS.append(func)
    return func


@flow
def registration(w: World) -> None:
    patients.register_patient(
        w.session, w.now, email="bert.canary@example.org", password="ein sehr gutes passwort",
        profile=patients.Profile(first_name=f"Bert{MARKER}", last_name=f"Vogel{MARKER}", birth_date=dt.date(1990, 1, 2),
                                 postcode="53111", windows=[(0, 480, 1200)]),
        intake=patients.Intake(problems=list(PROBLEMS), description=f"Albträume {MARKER}", urgent=True,
                               urgency_code="PTV11X"),
        consent_health=True, consent_rules=True, practice=w.practice)


@flow
def already_registered(w: World) -> None:
    patients.register_patient(
        w.session, w.now, email=w.patient.user.email, password="ein sehr gutes passwort",
        profile=patients.Profile(first_name=f"Anna{MARKER}", last_name=f"Muster{MARKER}",
                                 birth_date=dt.date(1990, 1, 2), postcode="53111", windows=[(0, 480, 1200)]),
        intake=patients.Intake(problems=["trauma"], description=f"{MARKER}"),
        consent_health=True, consent_rules=True, practice=w.practice)


@flow
def password_reset(w: World) -> None:
    assert w.client.post("/auth/reset", data={"email": w.patient.user.email}).status_code == 302


@flow
def reminder(w: World) -> None:
    make_booking(w.session, w.patient, w.therapist, start_at=w.now + dt.timedelta(hours=20),
                 created_at=w.now - dt.timedelta(days=5))
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
    return offers.post_slot(w.session, w.now, w.therapist.user, w.therapist,
                            start_at=w.now + dt.timedelta(hours=hours), minutes=50, kind="sprechstunde",
                            modality=kw.get("modality", "in_person"), mode="auto", settings=w.settings)


def _offer_of(w: World, slot, patient):
    return w.session.scalar(select(Offer).where(Offer.slot_id == slot.id, Offer.patient_id == patient.id))


@flow
def offer_accept_taken_booked(w: World) -> None:
    """Offer → accept → others taken → booking confirmed → practice told → other offer withdrawn."""
    rival = make_patient(w.session, first_name=f"Rival{MARKER}", problems=PROBLEMS, lists=[w.practice])
    later = _post_auto_slot(w, [w.patient, rival], hours=80)
    slot = _post_auto_slot(w, [w.patient, rival], hours=30)
    offers.accept_offer(w.session, w.now, _offer_of(w, slot, w.patient), w.patient.user, w.settings)
    kinds = {row.kind for row in w.session.scalars(select(OutboxMessage))}
    assert {"offer", "offer_taken", "booking_confirmed", "practice_outcome_booked"} <= kinds, kinds
    assert later.id != slot.id


@flow
def video_offer_and_patient_cancel(w: World) -> None:
    slot = _post_auto_slot(w, [w.patient], hours=54, modality="video")  # Thu 16:00 Berlin
    booking = offers.accept_offer(w.session, w.now, _offer_of(w, slot, w.patient), w.patient.user, w.settings)
    booking = booking[0] if isinstance(booking, tuple) else booking
    offers.cancel_booking_by_patient(w.session, w.now, w.patient.user, booking, w.settings)


@flow
def decline_expire_unfilled(w: World) -> None:
    slot = _post_auto_slot(w, [w.patient], hours=30)
    offers.decline_offer(w.session, w.now, _offer_of(w, slot, w.patient), w.patient.user, w.settings)
    sweep(w.session, w.now + dt.timedelta(hours=29), w.settings)


def _forbidden(w: World) -> list[str]:
    return [MARKER, w.practice.name, w.practice.street, w.practice.phone, w.patient.phone,
            w.patient.first_name, w.patient.last_name, *sorted(CLINICAL_WORDS)]


@pytest.mark.parametrize("run_flow", FLOWS, ids=lambda f: f.__name__)
def test_no_name_practice_or_clinical_word_in_any_mail(run_flow, world, settings):
    run_flow(world)
    world.session.commit()
    rows = list(world.session.scalars(select(OutboxMessage)))
    assert rows, "this flow sent no mail: the canary proves nothing"
    forbidden = _forbidden(world)
    for row in rows:
        for part in (row.subject, row.body_text, row.body_html):
            found = [word for word in forbidden if word.lower() in part.lower()]
            assert not found, f"{row.kind} mail contains {found}"

    memory = MemorySender()
    delivery.deliver_due(world.session, world.now, settings, sender=memory)
    assert len(memory.sent) == len(rows)
    for msg in memory.sent:
        raw = msg.as_string()
        for part in msg.walk():
            if not part.is_multipart():
                raw += part.get_content()
        assert not [word for word in forbidden if word.lower() in raw.lower()]
