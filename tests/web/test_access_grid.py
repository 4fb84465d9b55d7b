"""The role x route grid: every rule in `app.url_map` against an explicit allow-table.

Eight actors: anonymous, patient A, patient B, a therapist of practice X and one of Y, a
secretariat serving X and one not serving X, and an admin. URL parameters get concrete
ids of objects that belong to practice X and patient A, so the table is also the
object-level check: patient B, the therapist of Y and the secretariat not serving X must
never reach A's or X's data by putting those ids in the URL.

A route missing from the table fails `test_every_route_is_in_the_table`: whoever adds a
route decides here who may use it. A POST is tried by denied roles in the per-role test
(nothing happens: they are refused); allowed POSTs run one per test on a fresh world, so
their side effects (logout, deactivation) cannot disturb other checks.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from ptmatch.domain import api
from ptmatch.models import (
    Booking,
    CallKind,
    CallNote,
    CallTask,
    ClinicalNote,
    DeliveryStatus,
    EnrollmentStatus,
    GroupEnrollment,
    Offer,
    OfferStatus,
    OutboxMessage,
    OutboxStatus,
    SlotStatus,
    User,
    WaitlistEntry,
    WebhookDelivery,
    WebhookEndpoint,
)
from ptmatch.models.ops import SCHEDULER_BEAT
from ptmatch.ops.heartbeat import beat
from tests.conftest import NOW
from tests.factories import (
    make_calendar_block,
    make_group,
    make_network,
    make_offer,
    make_room,
    make_slot,
)

ANON, PAT_A, PAT_B, THER_X, THER_Y, SEC_X, SEC_OTHER, ADMIN = ROLES = (
    "anon",
    "patient_a",
    "patient_b",
    "therapist_x",
    "therapist_y",
    "secretariat_x",
    "secretariat_other",
    "admin",
)
LOGGED_IN = frozenset(ROLES) - {ANON}
EVERYONE = frozenset(ROLES)
NOBODY = frozenset()
PATIENTS = frozenset({PAT_A, PAT_B})
THERAPISTS = frozenset({THER_X, THER_Y})
SECRETARIES = frozenset({SEC_X, SEC_OTHER})
STAFF = THERAPISTS | SECRETARIES | {ADMIN}


class Token:
    """A token-gated route: with a made-up token every role gets a 4xx (never 200, never 500)."""


TOKEN = Token()

CANARY = "CANARY-7f3a9c-KLINISCH"  # also used by the canary crawl

# endpoint -> roles that may use it with the ids of X / A. Keep it sorted by area.
ALLOW: dict[str, frozenset | Token] = {
    # public and static
    "static": EVERYONE,
    "bootstrap.static": EVERYONE,
    "public.home": EVERYONE,
    "public.healthz": EVERYONE,
    # operations (machine readers; /metrics: loopback or bearer token, see tests/test_ops_web.py)
    "ops.readyz": EVERYONE,
    "ops.metrics": EVERYONE,
    "public.crisis": EVERYONE,
    "public.set_language": EVERYONE,
    # auth
    "auth.login": EVERYONE,
    "auth.logout": EVERYONE,
    "auth.request_reset": EVERYONE,
    "auth.set_password": TOKEN,
    "auth.second_factor": NOBODY,  # only between password and code (a pending login)
    "auth.enrol": LOGGED_IN,  # patients enrol optionally; enrolled staff are sent home
    "auth.change_password": LOGGED_IN,
    # patient area
    "patient.register": EVERYONE,  # logged-in users are sent home
    "patient.registered": EVERYONE,
    "patient.verify_email": TOKEN,
    "patient.checkin": TOKEN,
    "patient.deleted": EVERYONE,
    "patient.dashboard": PATIENTS,
    "patient.resend_verification": PATIENTS,
    "patient.edit_profile": PATIENTS,
    "patient.edit_intake": PATIENTS,
    "patient.finder": PATIENTS,
    "patient.join": PATIENTS,  # any patient may join practice X's list
    "patient.join_pool": PATIENTS,
    "patient.leave": frozenset({PAT_A}),  # A's entry
    "patient.pause": PATIENTS,
    "patient.reactivate": PATIENTS,
    "patient.export": PATIENTS,  # always the caller's own data
    "patient.delete": PATIENTS,
    "patient.join_via_link": PATIENTS,
    "practice_link.landing": EVERYONE,
    "practice_link.practice_groups": EVERYONE,  # issue 19: public, pseudonymous
    "calendar.booking_ics": frozenset({PAT_A}),
    # practice area
    "practice.signup": EVERYONE,  # public sign-up; logged-in users are sent home
    "practice.awaiting": THERAPISTS,
    "practice.home": THERAPISTS,
    "practice.pool": THERAPISTS,
    "practice.profile": THERAPISTS,
    "practice.practice_profile": THERAPISTS,
    "practice.qr_print": THERAPISTS,
    "practice.qr_svg": THERAPISTS,
    "practice.patient": frozenset({THER_X}),
    "practice.add_note": frozenset({THER_X}),
    "practice.set_priority": frozenset({THER_X}),
    "practice.refer": frozenset({THER_X}),
    "practice.remove": frozenset({THER_X}),
    "practice.rooms_page": THERAPISTS,  # issue 19: always the own practice's rooms
    "practice.set_default_room": THERAPISTS,
    "practice.room_edit": frozenset({THER_X}),
    "practice.room_plan": THERAPISTS,
    "practice.statistics_page": THERAPISTS,  # each sees their own practice only
    "practice.statistics_csv": THERAPISTS,
    "calendar.settings": THERAPISTS,
    "calendar.rotate": THERAPISTS,
    "calendar.disable": THERAPISTS,
    "calendar.feed": TOKEN,
    "groups.index": THERAPISTS,
    "groups.new": THERAPISTS,
    "groups.detail": frozenset({THER_X}),
    "groups.send_wave": frozenset({THER_X}),
    "groups.remove_member": frozenset({THER_X}),
    "groups.cancel": frozenset({THER_X}),
    "groups.set_self_enrol": frozenset({THER_X}),
    "groups.calendar_rules_page": THERAPISTS,
    "groups.remove_block": frozenset({THER_X}),
    "group_offers.show": TOKEN,
    "group_offers.accept": TOKEN,
    "group_offers.decline": TOKEN,
    "group_offers.mine": PATIENTS,
    "group_offers.mine_offer": frozenset({PAT_A}),
    "group_offers.mine_accept": frozenset({PAT_A}),
    "group_offers.mine_decline": frozenset({PAT_A}),
    "group_offers.withdraw": frozenset({PAT_A}),
    "group_offers.open_group": PATIENTS,  # an open group: seats left, no names
    "group_offers.enrol": PATIENTS,  # the domain checks the fit
    # offers and bookings (mail links; the patient's own pages)
    "offers.token_offer": TOKEN,
    "offers.patient_offer": frozenset({PAT_A}),
    "offers.booking": frozenset({PAT_A}),
    "offers.booking_ics": frozenset({PAT_A}),
    "offers.cancel_booking": frozenset({PAT_A}),
    # slots (therapists; the secretariat for its practices)
    "slots.index": THERAPISTS | SECRETARIES,
    "slots.new": THERAPISTS | SECRETARIES,
    "slots.detail": frozenset({THER_X, SEC_X}),
    "slots.offers_fragment": frozenset({THER_X, SEC_X}),
    "slots.send": frozenset({THER_X, SEC_X}),
    "slots.cancel": frozenset({THER_X, SEC_X}),
    "slots.mark": frozenset({THER_X, SEC_X}),
    "slots.release": frozenset({THER_X, SEC_X}),
    # secretariat
    "secretariat.home": SECRETARIES,
    "secretariat.register": SECRETARIES,
    "secretariat.slots": SECRETARIES,
    "secretariat.caller": frozenset({SEC_X}),
    "secretariat.intake": frozenset({SEC_X}),
    "secretariat.edit_profile": frozenset({SEC_X}),
    "secretariat.add_note": frozenset({SEC_X}),
    "secretariat.join_list": frozenset({SEC_X}),
    "secretariat.leave_list": frozenset({SEC_X}),
    "secretariat.answer_offer": frozenset({SEC_X}),
    "secretariat.enrol_group": frozenset({SEC_X}),
    "secretariat.call_queue": SECRETARIES,
    "secretariat.call_outcome": frozenset({SEC_X}),
    "secretariat.at_risk": SECRETARIES,
    # admin
    "admin.home": frozenset({ADMIN}),
    "admin.therapists": frozenset({ADMIN}),
    "admin.approve_therapist": frozenset({ADMIN}),
    "admin.assign_therapist": frozenset({ADMIN}),
    "admin.practice_list": frozenset({ADMIN}),
    "admin.practice_new": frozenset({ADMIN}),
    "admin.practice_edit": frozenset({ADMIN}),
    "admin.practice_switch": frozenset({ADMIN}),
    "admin.secretariats": frozenset({ADMIN}),
    "admin.secretariat_practices": frozenset({ADMIN}),
    "admin.users": frozenset({ADMIN}),
    "admin.invite": frozenset({ADMIN}),
    "admin.account_action": frozenset({ADMIN}),
    "admin.audit_log": frozenset({ADMIN}),
    "admin.audit_csv": frozenset({ADMIN}),
    "admin.statistics_page": frozenset({ADMIN}),
    "admin.statistics_csv": frozenset({ADMIN}),
    "admin.statistics_month": frozenset({ADMIN}),
    "mailadmin.index": frozenset({ADMIN}),
    "mailadmin.resend": frozenset({ADMIN}),
    "mailadmin.resend_all": frozenset({ADMIN}),
    # the practice API: a key, never a login, opens it; its documentation is public
    "api.openapi_json": EVERYONE,
    "api.docs": EVERYONE,
    "api.post_slot": TOKEN,
    "api.list_slots": TOKEN,
    "api.get_slot": TOKEN,
    "api.cancel_slot": TOKEN,
    "api.attendance": TOKEN,
    "api.list_bookings": TOKEN,
    "api.list_therapists": TOKEN,
    "api.practice_stats": TOKEN,
    # keys and webhooks: therapists with 2FA, each for their own practice
    "apikeys.index": THERAPISTS,
    "apikeys.create_key": THERAPISTS,
    "apikeys.revoke_key": frozenset({THER_X}),
    "apikeys.add_webhook": THERAPISTS,
    "apikeys.remove_webhook": frozenset({THER_X}),
    "apikeys.resend": frozenset({THER_X}),
}

# URL parameter name -> key of the world object whose id it takes (objects of X and A).
PARAMS = {
    "patient_id": "patient_a",
    "practice_id": "practice_x",
    "therapist_id": "therapist_x_row",
    "user_id": "user_a",
    "entry_id": "entry_a_x",
    "offer_id": "offer_a_x",
    "booking_id": "booking_a_x",
    "slot_id": "slot_offering_x",
    "outbox_id": "mail_a",
    "note_id": "clinical_note_a",
    "call_note_id": "call_note_a",
    "slug": "practice_x_slug",
    "group_id": "group_x",
    "enrollment_id": "enrollment_a_x",
    "block_id": "block_x",
    "room_id": "room_x",
    "key_id": "api_key_x",
    "endpoint_id": "webhook_x",
    "delivery_id": "delivery_x",
    "task_id": "call_task_a_x",
}
# Parameters that are not ids.
LITERAL_PARAMS = {
    "token": "not-a-real-token-0123456789abcdef",
    "filename": "ptmatch.css",
    "month": "2026-11",
}
# Per-endpoint overrides where the generic choice does not fit.
ENDPOINT_PARAMS = {
    "bootstrap.static": {"filename": "css/bootstrap.min.css"},
    "admin.secretariat_practices": {"user_id": "secretary_other"},
    "slots.mark": {"slot_id": "slot_booked_x"},
    "slots.release": {"slot_id": "slot_booked_x"},
    "group_offers.mine_offer": {"offer_id": "group_offer_a_x"},
    "group_offers.mine_accept": {"offer_id": "group_offer_a_x"},
    "group_offers.mine_decline": {"offer_id": "group_offer_a_x"},
}


# --- the world ------------------------------------------------------------------------------------


def build_world(session) -> dict:
    """Practices X and Y, the eight actors, and A's data at X (list entry, clinical record with
    the canary, a booking, a pending offer, notes, a mail). Committed."""
    net = make_network(session, a={"description": f"Beschreibung {CANARY}", "urgent": True})
    x, y, ther_x, ther_y, a, b = net.x, net.y, net.ther_x, net.ther_y, net.a, net.b
    sec_x, sec_other, admin = net.sec_x, net.sec_y, net.admin
    a.clinical.urgency_code = "CANARY-U1"
    booked = make_slot(
        session, ther_x, start_at=NOW + dt.timedelta(days=1), status=SlotStatus.BOOKED
    )
    offering = make_slot(session, ther_x, start_at=NOW + dt.timedelta(days=30))
    offer = make_offer(session, offering, a, expires_at=NOW + dt.timedelta(days=29))
    booking = Booking(slot_id=booked.id, patient_id=a.id, created_at=NOW)
    session.add(booking)
    clinical_note = ClinicalNote(
        patient_id=a.id,
        practice_id=x.id,
        author_id=ther_x.user_id,
        text=f"Notiz {CANARY}",
        created_at=NOW,
    )
    call_note = CallNote(
        patient_id=a.id, author_id=sec_x.id, text="Rückruf nach 16 Uhr", created_at=NOW
    )
    mail = OutboxMessage(
        dedupe_key="grid:a",
        kind="offer",
        user_id=a.user_id,
        to_addr="a@example.org",
        locale="de",
        subject="s",
        body_text="t",
        body_html="",
        message_id="<m@x>",
        status=OutboxStatus.DEAD,
        attempts=8,
        next_attempt_at=NOW,
        created_at=NOW,
        last_error="",
    )
    session.add_all([clinical_note, call_note, mail])
    session.flush()
    entry = session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.patient_id == a.id, WaitlistEntry.practice_id == x.id
        )
    )
    group, block = (
        make_group(session, ther_x, enrolled_count=1),
        make_calendar_block(session, ther_x),
    )
    group_offer = Offer(
        group_id=group.id,
        patient_id=a.id,
        token_hash="0" * 64,
        status=OfferStatus.ACCEPTED,
        sent_at=NOW,
        expires_at=NOW + dt.timedelta(days=1),
    )
    enrollment = GroupEnrollment(
        group_id=group.id, patient_id=a.id, status=EnrollmentStatus.ENROLLED, created_at=NOW
    )
    session.add_all([group_offer, enrollment])
    api_key, _raw = api.create_key(session, NOW, ther_x.user, "PVS", api.SCOPES)
    webhook = WebhookEndpoint(
        practice_id=x.id, url="https://pvs.example/h", secret="whsec_x", created_at=NOW
    )
    session.add(webhook)
    session.flush()
    delivery = WebhookDelivery(
        endpoint_id=webhook.id,
        dedupe_key="grid:x",
        event="slot.booked",
        body="{}",
        status=DeliveryStatus.DEAD,
        attempts=8,
        next_attempt_at=NOW,
        created_at=NOW,
        last_error="",
    )
    session.add(delivery)
    session.flush()
    call_task = CallTask(
        kind=CallKind.OFFER,
        patient_id=a.id,
        offer_id=offer.id,
        slot_id=offering.id,
        practice_id=x.id,
        due_at=offer.expires_at,
        dedupe_key="grid:call",
        created_at=NOW,
    )
    session.add(call_task)
    session.flush()
    actors = {
        ANON: None,
        PAT_A: session.get(User, a.user_id),
        PAT_B: session.get(User, b.user_id),
        THER_X: ther_x.user,
        THER_Y: ther_y.user,
        SEC_X: sec_x,
        SEC_OTHER: sec_other,
        ADMIN: admin,
    }
    world = {
        "practice_x": x,
        "practice_y": y,
        "practice_x_slug": x.slug,
        "patient_a": a,
        "patient_b": b,
        "user_a": session.get(User, a.user_id),
        "therapist_x_row": ther_x,
        "secretary_other": sec_other,
        "entry_a_x": entry,
        "offer_a_x": offer,
        "booking_a_x": booking,
        "slot_offering_x": offering,
        "slot_booked_x": booked,
        "mail_a": mail,
        "clinical_note_a": clinical_note,
        "call_note_a": call_note,
        "group_x": group,
        "enrollment_a_x": enrollment,
        "block_x": block,
        "group_offer_a_x": group_offer,
        "room_x": make_room(session, x),
        "api_key_x": api_key,
        "webhook_x": webhook,
        "delivery_x": delivery,
        "call_task_a_x": call_task,
    }
    beat(session, SCHEDULER_BEAT, NOW)  # a live scheduler, so /readyz answers 200
    session.commit()
    ids = {k: (v if isinstance(v, str) else v.id) for k, v in world.items()}
    return ids | {"_objects": world, "_actors": actors}


# --- helpers --------------------------------------------------------------------------------------


def _rules(app):
    return [r for r in app.url_map.iter_rules()]


def _url(app, rule, world: dict) -> str:
    values = {}
    overrides = ENDPOINT_PARAMS.get(rule.endpoint, {})
    for name in rule.arguments:
        converter = rule._converters.get(name)
        if name in overrides:
            key = overrides[name]
            values[name] = world[key] if key in world else key
        elif name in PARAMS:
            values[name] = world[PARAMS[name]]
        elif name in LITERAL_PARAMS:
            values[name] = LITERAL_PARAMS[name]
        elif converter is not None and hasattr(converter, "items"):
            values[name] = sorted(converter.items)[0]
        else:
            pytest.fail(
                f"{rule.endpoint}: no value for URL parameter {name!r}; "
                f"add it to PARAMS in {__file__}"
            )
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def _method(rule) -> str:
    return "GET" if "GET" in rule.methods else "POST"


def _request(client, login_as, world, role, method, url):
    if role == ANON:
        with client.session_transaction() as sess:
            sess.clear()
    else:
        login_as(world["_actors"][role])
    resp = client.get(url) if method == "GET" else client.post(url, data={})
    resp.close()  # file responses (static) hold an open file until closed
    return resp


def _is_denied(resp) -> bool:
    if resp.status_code in (401, 403, 404):
        return True
    if resp.status_code in (301, 302, 303, 307, 308):
        return urlsplit(resp.headers.get("Location", "")).path.startswith("/auth/login")
    return False


def _describe(resp) -> str:
    return f"{resp.status_code} {resp.headers.get('Location', '')}".strip()


# --- the tests ------------------------------------------------------------------------------------


def test_every_route_is_in_the_table(app):
    endpoints = {r.endpoint for r in _rules(app)}
    missing = sorted(endpoints - set(ALLOW))
    assert not missing, f"routes without an entry in ALLOW ({__file__}): {missing}"


def test_table_has_no_stale_entries(app):
    endpoints = {r.endpoint for r in _rules(app)}
    stale = sorted(set(ALLOW) - endpoints - {"dev.mailbox"})
    assert not stale, f"ALLOW lists endpoints that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
def test_role_grid(app, client, session, login_as, role):
    """GET routes: allowed roles get through, others are refused. POST routes: refused roles
    are refused (allowed POSTs run in test_allowed_post)."""
    world = build_world(session)
    problems = []
    for rule in sorted(_rules(app), key=lambda r: r.endpoint):
        allowed = ALLOW.get(rule.endpoint)
        if allowed is None:
            continue  # reported by test_every_route_is_in_the_table
        method = _method(rule)
        url = _url(app, rule, world)
        if role in allowed if isinstance(allowed, frozenset) else False:
            if method == "POST":
                continue
        try:
            resp = _request(client, login_as, world, role, method, url)
        except Exception as exc:  # noqa: BLE001 - collect every broken route, not just the first
            problems.append(f"{rule.endpoint} {method} {url}: raised {type(exc).__name__}: {exc}")
            continue
        if isinstance(allowed, Token):
            if not 400 <= resp.status_code < 500:
                problems.append(f"{rule.endpoint} {url}: a made-up token gave {_describe(resp)}")
        elif resp.status_code >= 500:
            problems.append(f"{rule.endpoint} {url}: server error {resp.status_code}")
        elif role in allowed and _is_denied(resp):
            problems.append(f"{rule.endpoint} {url}: should be allowed, got {_describe(resp)}")
        elif role not in allowed and not _is_denied(resp):
            problems.append(
                f"{rule.endpoint} {method} {url}: should be refused, got {_describe(resp)}"
            )
    assert not problems, f"{role}:\n  " + "\n  ".join(problems)


def _allowed_posts() -> list[tuple[str, str]]:
    """(endpoint, role) for every POST-only route and each role allowed to use it."""
    from ptmatch import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "INSTANCE_PATH": tmp,
                "SECRET_KEY": "x" * 40,
                "TESTING": True,
                "DATABASE_URL": "sqlite:///" + os.path.join(tmp, "grid.sqlite"),
            }
        )
        rules = list(app.url_map.iter_rules())
        app.extensions["ptmatch_engine"].dispose()
    pairs = []
    for rule in rules:
        allowed = ALLOW.get(rule.endpoint)
        if "GET" in rule.methods or not isinstance(allowed, frozenset):
            continue
        pairs.extend((rule.endpoint, role) for role in sorted(allowed))
    return sorted(set(pairs))


@pytest.mark.parametrize(("endpoint", "role"), _allowed_posts())
def test_allowed_post(app, client, session, login_as, endpoint, role):
    world = build_world(session)
    rule = next(r for r in _rules(app) if r.endpoint == endpoint)
    resp = _request(client, login_as, world, role, "POST", _url(app, rule, world))
    assert resp.status_code < 500
    assert not _is_denied(resp), f"{endpoint} as {role}: {_describe(resp)}"
