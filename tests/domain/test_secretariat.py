"""The secretariat console's domain: search, caller card, phone registration, write-only
intake, call notes, lists, answering offers for a caller, the served practices' slots."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ptmatch.catalog import PROBLEM_AREAS
from ptmatch.domain import patients, secretariat
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound, SlotTaken
from ptmatch.models import (
    AuditEvent,
    Booking,
    CallNote,
    EntryStatus,
    OfferStatus,
    OutboxMessage,
    PatientClinical,
    RegisteredVia,
    Role,
    SlotStatus,
    TokenPurpose,
    User,
    UserToken,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import (
    make_offer,
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
    make_user,
)


@pytest.fixture
def net(session):
    x, y = make_practice(session, name="Praxis X"), make_practice(session, name="Praxis Y")
    ther_x = make_therapist(session, x)
    return {
        "x": x,
        "y": y,
        "ther_x": ther_x,
        "sec": make_secretary(session, [x]),
        "other_sec": make_secretary(session, [y]),
        "a": make_patient(
            session,
            lists=[x],
            first_name="Anna",
            last_name="Özdemir",
            phone="+491701234567",
            birth_date=dt.date(1990, 5, 17),
        ),
        "b": make_patient(session, lists=[y], first_name="Anna", last_name="Berger"),
    }


def _actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _profile(**overrides) -> patients.Profile:
    fields = dict(
        first_name="Karl",
        last_name="Anrufer",
        birth_date=dt.date(1960, 3, 1),
        postcode="53111",
        phone="0228 123456",
        windows=[(0, 8 * 60, 20 * 60), (2, 14 * 60, 18 * 60)],
    )
    fields.update(overrides)
    return patients.Profile(**fields)


# --- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "özdemir",
        "Özdemir",
        "anna özd",
        "0170 1234567",
        "+49 170 1234567",
        "17.05.1990",
        "1990-05-17",
        "Anna 17.05.1990",
    ],
)
def test_search_finds_a_visible_caller(session, net, query):
    hits = secretariat.search_callers(session, NOW, net["sec"], query)
    assert [h.patient for h in hits] == [net["a"]]


def test_search_by_email(session, net):
    email = session.get(User, net["a"].user_id).email
    hits = secretariat.search_callers(session, NOW, net["sec"], email.upper())
    assert [h.patient for h in hits] == [net["a"]]


def test_search_never_returns_callers_of_other_practices(session, net):
    assert [h.patient for h in secretariat.search_callers(session, NOW, net["sec"], "Anna")] == [
        net["a"]
    ]
    assert [
        h.patient for h in secretariat.search_callers(session, NOW, net["other_sec"], "Anna")
    ] == [net["b"]]


def test_search_includes_pool_patients(session, net):
    pooled = make_patient(session, pool=True, last_name="Poolmann")
    assert [
        h.patient for h in secretariat.search_callers(session, NOW, net["other_sec"], "poolmann")
    ] == [pooled]


def test_search_treats_wildcards_literally(session, net):
    assert secretariat.search_callers(session, NOW, net["sec"], "%") == []
    assert secretariat.search_callers(session, NOW, net["sec"], "_") == []


def test_search_refuses_non_secretaries(session, net):
    with pytest.raises(NotAllowed):
        secretariat.search_callers(session, NOW, net["ther_x"].user, "Anna")


def test_get_caller_hides_foreign_patients_as_not_found(session, net):
    assert secretariat.get_caller(session, NOW, net["sec"], net["a"].id) is net["a"]
    with pytest.raises(NotFound):
        secretariat.get_caller(session, NOW, net["sec"], net["b"].id)
    with pytest.raises(NotFound):
        secretariat.get_caller(session, NOW, net["sec"], 999999)


# --- card ----------------------------------------------------------------------------------------


def test_card_has_lists_offers_bookings_notes_and_is_audited(session, now, net):
    a = net["a"]
    offer = make_offer(session, make_slot(session, net["ther_x"]), a)
    booked = make_slot(
        session, net["ther_x"], start_at=now + dt.timedelta(days=3), status=SlotStatus.BOOKED
    )
    session.add(Booking(slot_id=booked.id, patient_id=a.id, created_at=now))
    secretariat.add_call_note(session, now, net["sec"], a, "Rückruf ab 16 Uhr")
    card = secretariat.caller_card(session, now, net["sec"], a)
    assert [e.practice_id for e in card.lists] == [net["x"].id]
    assert [line.offer for line in card.offers] == [offer] and card.offers[0].can_answer
    assert [line.slot for line in card.bookings] == [booked]
    assert [line.note.text for line in card.notes] == ["Rückruf ab 16 Uhr"]
    assert len(card.availability) == 5
    assert card.intake_recorded is True
    assert "secretariat.caller_viewed" in _actions(session)


def test_card_carries_no_clinical_object(session, now, net):
    card = secretariat.caller_card(session, now, net["sec"], net["a"])
    values = [getattr(card, name) for name in vars(card)]
    assert not any(isinstance(v, PatientClinical) for v in values)


def test_card_refused_for_a_foreign_patient(session, now, net):
    with pytest.raises(NotFound):
        secretariat.caller_card(session, now, net["sec"], net["b"])


# --- registration --------------------------------------------------------------------------------


def test_register_caller_records_verbal_consent_and_mails_a_set_password_link(session, now, net):
    patient = secretariat.register_caller(
        session,
        now,
        net["sec"],
        profile=_profile(),
        email="Karl@Example.org",
        consent_health=True,
        consent_rules=True,
    )
    user = session.get(User, patient.user_id)
    assert (
        patient.registered_via == RegisteredVia.SECRETARIAT
        and patient.registered_by_id == net["sec"].id
    )
    assert patient.consent_recorded_by_id == net["sec"].id
    assert patient.consent_health_at == now and patient.consent_rules_at == now
    assert patient.phone == "+49228123456"
    assert [(w.weekday, w.start_min) for w in patient.availability] == [(0, 480), (2, 840)]
    assert (
        user.role == Role.PATIENT and user.password_hash is None and user.email_verified_at == now
    )
    token = session.scalar(select(UserToken).where(UserToken.user_id == user.id))
    assert token.purpose == TokenPurpose.SET_PASSWORD
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.user_id == user.id))
    assert mail.kind == "set_password" and "/auth/set-password/" in mail.body_text
    assert "Karl" not in mail.body_text and "Anrufer" not in mail.body_text
    assert patients.is_matchable(patient, user, now.date())


def test_register_caller_without_email_has_no_account_but_is_matchable(session, now, net):
    patient = secretariat.register_caller(
        session,
        now,
        net["sec"],
        profile=_profile(),
        email="",
        consent_health=True,
        consent_rules=True,
    )
    assert patient.user_id is None
    assert session.scalar(select(OutboxMessage.id)) is None
    assert patients.is_matchable(patient, None, now.date())


def test_registered_caller_is_visible_to_every_secretary(session, now, net):
    patient = secretariat.register_caller(
        session,
        now,
        net["sec"],
        profile=_profile(),
        email=None,
        consent_health=True,
        consent_rules=True,
    )
    assert [
        h.patient for h in secretariat.search_callers(session, NOW, net["other_sec"], "Anrufer")
    ] == [patient]


@pytest.mark.parametrize("field", ["consent_health", "consent_rules"])
def test_register_caller_needs_both_consents(session, now, net, field):
    kwargs = {"consent_health": True, "consent_rules": True, field: False}
    with pytest.raises(InvalidInput) as err:
        secretariat.register_caller(
            session, now, net["sec"], profile=_profile(), email=None, **kwargs
        )
    assert err.value.field == field


def test_register_caller_needs_a_phone(session, now, net):
    with pytest.raises(InvalidInput) as err:
        secretariat.register_caller(
            session,
            now,
            net["sec"],
            profile=_profile(phone=""),
            email=None,
            consent_health=True,
            consent_rules=True,
        )
    assert err.value.field == "phone"


def test_register_caller_refuses_a_taken_email(session, now, net):
    taken = session.get(User, net["a"].user_id).email
    with pytest.raises(InvalidInput) as err:
        secretariat.register_caller(
            session,
            now,
            net["sec"],
            profile=_profile(),
            email=taken,
            consent_health=True,
            consent_rules=True,
        )
    assert err.value.field == "email"


def test_only_secretaries_register_callers(session, now, net):
    with pytest.raises(NotAllowed):
        secretariat.register_caller(
            session,
            now,
            make_user(session, Role.ADMIN),
            profile=_profile(),
            email=None,
            consent_health=True,
            consent_rules=True,
        )


def test_update_caller_profile_changes_times(session, now, net):
    profile = patients.profile_of(net["a"])
    profile.windows = [(4, 600, 720)]
    secretariat.update_caller_profile(session, now, net["sec"], net["a"], profile)
    session.expire(net["a"], ["availability"])
    assert [(w.weekday, w.start_min, w.end_min) for w in net["a"].availability] == [(4, 600, 720)]


# --- intake ---------------------------------------------------------------------------------------


def test_intake_appends_and_never_lowers(session, now, net):
    a = net["a"]
    clinical = session.get(PatientClinical, a.id)
    clinical.urgent, clinical.urgency_code = True, "OLD1"
    secretariat.record_intake(
        session, now, net["sec"], a, patients.Intake(problems=["anxiety"], description="Neu gesagt")
    )
    assert set(PROBLEM_AREAS.from_mask(clinical.problems_mask)) == {"depression", "anxiety"}
    assert clinical.description == "Beschreibung\n\nNeu gesagt"
    assert clinical.urgent and clinical.urgency_code == "OLD1"
    assert clinical.recorded_by_id == net["sec"].id


def test_intake_creates_a_record_when_none_exists(session, now, net):
    session.delete(session.get(PatientClinical, net["a"].id))
    session.flush()
    secretariat.record_intake(
        session, now, net["sec"], net["a"], patients.Intake(urgent=True, urgency_code="AB12")
    )
    clinical = session.get(PatientClinical, net["a"].id)
    assert clinical.urgent and clinical.urgency_code == "AB12"


def test_intake_is_audited_without_content(session, now, net):
    secretariat.record_intake(
        session, now, net["sec"], net["a"], patients.Intake(description="geheim")
    )
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.recorded"))
    assert event.actor_id == net["sec"].id and "geheim" not in str(event.details)


def test_intake_needs_something(session, now, net):
    with pytest.raises(InvalidInput):
        secretariat.record_intake(session, now, net["sec"], net["a"], patients.Intake())


def test_intake_refused_for_foreign_patient(session, now, net):
    with pytest.raises(NotAllowed):
        secretariat.record_intake(
            session, now, net["sec"], net["b"], patients.Intake(description="x")
        )


# --- notes and lists ------------------------------------------------------------------------------


def test_call_note_is_validated(session, now, net):
    with pytest.raises(InvalidInput):
        secretariat.add_call_note(session, now, net["sec"], net["a"], "   ")
    with pytest.raises(InvalidInput):
        secretariat.add_call_note(session, now, net["sec"], net["a"], "x" * 1001)
    assert session.scalar(select(CallNote.id)) is None


def test_put_on_pool_and_served_list_only(session, now, net):
    caller = secretariat.register_caller(
        session,
        now,
        net["sec"],
        profile=_profile(),
        email=None,
        consent_health=True,
        consent_rules=True,
    )
    secretariat.put_on_list(session, now, net["sec"], caller, None)
    secretariat.put_on_list(session, now, net["sec"], caller, net["x"].id)
    with pytest.raises(NotAllowed):
        secretariat.put_on_list(session, now, net["sec"], caller, net["y"].id)
    entries = session.scalars(
        select(WaitlistEntry.practice_id).where(WaitlistEntry.patient_id == caller.id)
    )
    assert set(entries) == {None, net["x"].id}
    joined = session.scalar(select(AuditEvent).where(AuditEvent.action == "waitlist.joined"))
    assert joined.actor_id == net["sec"].id


def test_take_off_list(session, now, net):
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == net["a"].id))
    secretariat.take_off_list(session, now, net["sec"], net["a"], entry.id)
    assert entry.status == EntryStatus.REMOVED


def test_take_off_list_refuses_another_patients_entry(session, now, net):
    other = make_patient(session, lists=[net["x"]])
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == other.id))
    with pytest.raises(NotFound):
        secretariat.take_off_list(session, now, net["sec"], net["a"], entry.id)


# --- offers and slots -----------------------------------------------------------------------------


def test_accepting_for_a_caller_books_and_audits_the_secretary(session, now, net, settings):
    offer = make_offer(session, make_slot(session, net["ther_x"]), net["a"])
    booking = secretariat.answer_offer(
        session, now, net["sec"], offer, accept=True, settings=settings
    )
    assert booking.patient_id == net["a"].id and booking.booked_by_id == net["sec"].id
    assert offer.status == OfferStatus.ACCEPTED and offer.responded_by_id == net["sec"].id
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "offer.accepted"))
    assert (event.actor_id, event.actor_role, event.patient_id) == (
        net["sec"].id,
        "secretary",
        net["a"].id,
    )


def test_declining_for_a_caller_is_audited(session, now, net, settings):
    offer = make_offer(session, make_slot(session, net["ther_x"]), net["a"])
    secretariat.answer_offer(session, now, net["sec"], offer, accept=False, settings=settings)
    assert offer.status == OfferStatus.DECLINED
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "offer.declined"))
    assert event.actor_id == net["sec"].id


def test_accepting_a_taken_slot_raises(session, now, net, settings):
    slot = make_slot(session, net["ther_x"])
    mine = make_offer(session, slot, net["a"])
    rival = make_offer(session, slot, make_patient(session, lists=[net["x"]]))
    secretariat.answer_offer(session, now, net["sec"], rival, accept=True, settings=settings)
    with pytest.raises(SlotTaken):
        secretariat.answer_offer(session, now, net["sec"], mine, accept=True, settings=settings)


def test_cannot_answer_for_a_foreign_patient(session, now, net, settings):
    ther_y = make_therapist(session, net["y"])
    offer = make_offer(session, make_slot(session, ther_y), net["b"])
    with pytest.raises(NotAllowed):
        secretariat.answer_offer(session, now, net["sec"], offer, accept=True, settings=settings)
    assert offer.status == OfferStatus.PENDING


def test_slots_overview_only_served_practices_with_outcome(session, now, net):
    mine = make_slot(session, net["ther_x"], start_at=now + dt.timedelta(hours=5))
    make_offer(session, mine, net["a"])
    make_slot(session, make_therapist(session, net["y"]), start_at=now + dt.timedelta(hours=5))
    start, end = secretariat.berlin_day_bounds(secretariat.berlin_today(now))
    lines = secretariat.slots_overview(session, now, net["sec"], start=start, end=end)
    assert [line.slot for line in lines] == [mine]
    assert lines[0].pending_offers == 1 and lines[0].booking is None


def test_berlin_day_bounds_follow_dst(session):
    start, end = secretariat.berlin_day_bounds(dt.date(2026, 10, 25))  # clocks go back: 25 hours
    assert end - start == dt.timedelta(hours=25)
    assert start == dt.datetime(2026, 10, 24, 22, 0, tzinfo=dt.UTC)
