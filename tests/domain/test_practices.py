"""Practices and therapists: sign-up, approval gate, practice set-up, profile validation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ptmatch.catalog import LANGUAGES, PROBLEM_AREAS
from ptmatch.domain import practices
from ptmatch.domain.errors import InvalidInput, NotAllowed
from ptmatch.models import AuditEvent, OutboxMessage, Postcode, Role, Therapist, User
from tests.factories import PASSWORD, make_practice, make_therapist, make_user


def _request(session, now, **overrides):
    fields = dict(
        email="neu@praxis.example",
        password=PASSWORD,
        display_name="Dr. Neu",
        approbation="PP, Approbation 2019, LPA Köln",
        lanr="123456789",
    )
    fields.update(overrides)
    return practices.request_therapist_account(session, now, **fields)


def _actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _mail_kinds(session) -> list[str]:
    return list(session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


# --- sign-up ----------------------------------------------------------------------------------


def test_request_creates_unapproved_therapist_without_totp(session, now):
    therapist = _request(session, now)
    assert therapist.approved_at is None
    assert therapist.practice_id is None
    assert therapist.lanr == "123456789"
    assert therapist.user.role == Role.THERAPIST
    assert not therapist.user.has_totp
    assert "therapist.requested" in _actions(session)


def test_request_without_lanr_is_fine(session, now):
    assert _request(session, now, lanr="").lanr == ""


@pytest.mark.parametrize("lanr", ["12345678", "1234567890", "12345678a", "abcdefghi"])
def test_lanr_must_be_nine_digits(session, now, lanr):
    with pytest.raises(InvalidInput) as err:
        _request(session, now, lanr=lanr)
    assert err.value.field == "lanr"


def test_approbation_is_required(session, now):
    with pytest.raises(InvalidInput) as err:
        _request(session, now, approbation="  ")
    assert err.value.field == "approbation"


def test_request_with_known_email_creates_nothing_and_mails_the_owner(session, now):
    owner = make_user(session, Role.PATIENT, email="neu@praxis.example")
    assert _request(session, now) is None
    assert session.scalar(select(func.count(User.id))) == 1
    assert session.scalar(select(func.count(Therapist.id))) == 0
    assert session.scalar(select(OutboxMessage.user_id)) == owner.id
    assert _mail_kinds(session) == ["already_registered"]


# --- approval and the gate ----------------------------------------------------------------------


def test_approve_sets_fields_mails_and_audits(session, now):
    admin = make_user(session, Role.ADMIN)
    therapist = _request(session, now)
    practices.approve_therapist(session, now, admin, therapist)
    assert therapist.approved_at == now
    assert therapist.approved_by_id == admin.id
    assert _mail_kinds(session) == ["therapist_approved"]
    assert "therapist.approved" in _actions(session)


def test_approve_twice_sends_one_mail(session, now):
    admin = make_user(session, Role.ADMIN)
    therapist = _request(session, now)
    practices.approve_therapist(session, now, admin, therapist)
    practices.approve_therapist(session, now, admin, therapist)
    assert _mail_kinds(session) == ["therapist_approved"]


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SECRETARY, Role.PATIENT])
def test_only_admins_approve(session, now, role):
    therapist = _request(session, now)
    with pytest.raises(NotAllowed):
        practices.approve_therapist(session, now, make_user(session, role), therapist)
    assert therapist.approved_at is None


def test_unapproved_therapist_is_not_active(session, now):
    therapist = make_therapist(session, approved_at=None)
    assert practices.get_active_therapist(session, therapist.user) is None


def test_approved_therapist_without_practice_is_not_active(session, now):
    therapist = make_therapist(session, practice=False)
    assert therapist.practice_id is None
    assert practices.get_active_therapist(session, therapist.user) is None


def test_therapist_of_inactive_practice_is_not_active(session, now):
    therapist = make_therapist(session, make_practice(session, is_active=False))
    assert practices.get_active_therapist(session, therapist.user) is None


def test_approved_and_assigned_therapist_is_active(session, now):
    therapist = make_therapist(session)
    assert practices.get_active_therapist(session, therapist.user) is therapist


def test_other_roles_are_never_active_therapists(session, now):
    assert practices.get_active_therapist(session, make_user(session, Role.ADMIN)) is None
    assert practices.get_active_therapist(session, None) is None


# --- practices ---------------------------------------------------------------------------------


def test_create_practice_derives_slug_and_coordinates(session, now):
    session.add(Postcode(code="53115", place="Bonn", lat=50.72, lon=7.09))
    admin = make_user(session, Role.ADMIN)
    practice = practices.create_practice(
        session, now, admin, name="Psychotherapie Müller & Söhne", postcode="53115", city="Bonn"
    )
    assert practice.slug == "psychotherapie-mueller-soehne"
    assert (practice.lat, practice.lon) == pytest.approx((50.72, 7.09))
    assert "practice.created" in _actions(session)


def test_create_practice_with_unknown_postcode_has_no_coordinates(session, now):
    practice = practices.create_practice(
        session, now, make_user(session, Role.ADMIN), name="Praxis X", postcode="99999"
    )
    assert practice.lat is None and practice.lon is None


def test_practice_postcode_falls_back_to_its_area(session, now):
    session.add(Postcode(code="53115", place="Bonn", lat=50.72, lon=7.09))
    therapist = make_therapist(session)
    practices.update_practice_profile(
        session, now, therapist.user, therapist.practice, postcode="53117"
    )
    assert (therapist.practice.lat, therapist.practice.lon) == pytest.approx((50.72, 7.09))


def test_slugs_stay_unique(session, now):
    admin = make_user(session, Role.ADMIN)
    first = practices.create_practice(session, now, admin, name="Praxis am Rhein")
    second = practices.create_practice(session, now, admin, name="Praxis am Rhein")
    third = practices.create_practice(session, now, admin, name="Praxis  am  Rhein!")
    assert [first.slug, second.slug, third.slug] == [
        "praxis-am-rhein",
        "praxis-am-rhein-2",
        "praxis-am-rhein-3",
    ]


@pytest.mark.parametrize("slug", ["unter_strich", "mit leer", "-rand", "a" * 81])
def test_explicit_slug_is_checked(session, now, slug):
    with pytest.raises(InvalidInput) as err:
        practices.create_practice(
            session, now, make_user(session, Role.ADMIN), name="Praxis", slug=slug
        )
    assert err.value.field == "slug"


def test_only_admins_create_practices(session, now):
    with pytest.raises(NotAllowed):
        practices.create_practice(session, now, make_therapist(session).user, name="Praxis")


def test_assign_therapist(session, now):
    admin = make_user(session, Role.ADMIN)
    therapist = _request(session, now)
    practice = practices.create_practice(session, now, admin, name="Praxis Eins")
    practices.approve_therapist(session, now, admin, therapist)
    practices.assign_therapist(session, now, admin, therapist, practice)
    assert therapist.practice_id == practice.id
    assert practices.get_active_therapist(session, therapist.user) is therapist
    assert "therapist.assigned" in _actions(session)


def test_practices_share_a_waitlist_between_therapists(session, now):
    practice = make_practice(session)
    one, two = make_therapist(session, practice), make_therapist(session, practice)
    assert {t.id for t in practice.therapists} == {one.id, two.id}


def test_update_practice_profile_sets_coordinates(session, now):
    session.add(Postcode(code="53225", place="Bonn-Beuel", lat=50.74, lon=7.13))
    therapist = make_therapist(session)
    practices.update_practice_profile(
        session,
        now,
        therapist.user,
        therapist.practice,
        postcode="53225",
        website="https://praxis.example",
        phone="+49 228 123456",
        video_link_template="https://video.example/{slot_id}?t={token}",
        accepts_pool=False,
    )
    practice = therapist.practice
    assert (practice.lat, practice.lon) == pytest.approx((50.74, 7.13))
    assert practice.accepts_pool is False
    assert "practice.profile_updated" in _actions(session)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("postcode", "5311"),
        ("website", "javascript:alert(1)"),
        ("website", "praxis.example"),
        ("phone", "call me"),
        ("video_link_template", "https://video.example/{patient_name}"),
        ("video_link_template", "https://video.example/{"),
        ("booking_info", "x" * 4001),
    ],
)
def test_practice_profile_validation(session, now, field, value):
    therapist = make_therapist(session)
    before = getattr(therapist.practice, field)
    with pytest.raises(InvalidInput) as err:
        practices.update_practice_profile(
            session, now, therapist.user, therapist.practice, **{field: value}
        )
    assert err.value.field == field
    assert getattr(therapist.practice, field) == before


def test_therapist_of_another_practice_cannot_edit(session, now):
    therapist = make_therapist(session)
    other = make_practice(session)
    with pytest.raises(NotAllowed):
        practices.update_practice_profile(session, now, therapist.user, other, name="Übernommen")


# --- therapist profile --------------------------------------------------------------------------


def test_profile_update_stores_masks(session, now):
    therapist = make_therapist(session)
    practices.update_therapist_profile(
        session,
        now,
        therapist.user,
        therapist,
        gender="m",
        methods=["tp", "st"],
        specialties=["grief"],
        exclusions=["psychosis"],
        populations=["adults", "seniors"],
        languages=["de", "tr"],
        insurances=["gkv"],
        offers_in_person=False,
        offers_video=True,
        offers_group=True,
        session_minutes=100,
        buffer_minutes=0,
        switch_buffer_minutes=60,
    )
    assert therapist.gender == "m"
    assert therapist.specialties_mask == PROBLEM_AREAS.to_mask(["grief"])
    assert therapist.exclusions_mask == PROBLEM_AREAS.to_mask(["psychosis"])
    assert therapist.languages_mask == LANGUAGES.to_mask(["de", "tr"])
    assert (
        therapist.session_minutes,
        therapist.buffer_minutes,
        therapist.switch_buffer_minutes,
    ) == (100, 0, 60)
    assert "therapist.profile_updated" in _actions(session)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"session_minutes": 24}, "session_minutes"),
        ({"session_minutes": 121}, "session_minutes"),
        ({"session_minutes": "50"}, "session_minutes"),
        ({"buffer_minutes": -1}, "buffer_minutes"),
        ({"buffer_minutes": 61}, "buffer_minutes"),
        ({"switch_buffer_minutes": 61}, "switch_buffer_minutes"),
        ({"offers_in_person": False, "offers_video": False}, "offers_in_person"),
        ({"methods": ["vt", "homeopathy"]}, "methods"),
        ({"specialties": ["aliens"]}, "specialties"),
        ({"languages": ["xx"]}, "languages"),
        ({"languages": []}, "languages"),
        ({"populations": []}, "populations"),
        ({"insurances": []}, "insurances"),
        ({"gender": "q"}, "gender"),
        ({"specialties": ["trauma"], "exclusions": ["trauma"]}, "exclusions"),
    ],
)
def test_profile_validation(session, now, changes, field):
    therapist = make_therapist(session)
    with pytest.raises(InvalidInput) as err:
        practices.update_therapist_profile(session, now, therapist.user, therapist, **changes)
    assert err.value.field == field
    assert therapist.session_minutes == 50 and therapist.offers_in_person


@pytest.mark.parametrize(("minutes", "buffer"), [(25, 0), (120, 60)])
def test_profile_bounds_are_inclusive(session, now, minutes, buffer):
    therapist = make_therapist(session)
    practices.update_therapist_profile(
        session,
        now,
        therapist.user,
        therapist,
        session_minutes=minutes,
        buffer_minutes=buffer,
        switch_buffer_minutes=buffer,
    )
    assert (therapist.session_minutes, therapist.buffer_minutes) == (minutes, buffer)


def test_nobody_else_edits_a_therapist_profile(session, now):
    therapist = make_therapist(session)
    colleague = make_therapist(session, therapist.practice)
    with pytest.raises(NotAllowed):
        practices.update_therapist_profile(
            session, now, colleague.user, therapist, session_minutes=60
        )
