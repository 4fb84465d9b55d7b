"""The practice API: keys and scopes, the operations, idempotency, the flow through the API
exactly as through the portal, and the key pages."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from ptmatch.clock import pause
from ptmatch.models import ApiKey, AuditEvent, Offer, OfferStatus, Slot
from tests.api.helpers import ALL_SCOPES, auth, make_key
from tests.conftest import NOW
from tests.factories import make_network, make_offer, make_slot

START = (NOW + dt.timedelta(hours=30)).isoformat()


@pytest.fixture
def net(session):
    network = make_network(session)
    session.commit()
    return network


def _slot_body(net, **kw):
    return {"therapist_id": net.ther_x.id, "start": START, "minutes": 50, **kw}


def test_openapi_document_lists_every_operation(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert ops == {
        ("POST", "/slots"),
        ("GET", "/slots"),
        ("GET", "/slots/{slot_id}"),
        ("DELETE", "/slots/{slot_id}"),
        ("POST", "/bookings/{booking_id}/attendance"),
        ("GET", "/bookings"),
        ("GET", "/therapists"),
        ("GET", "/stats"),
    }
    post = doc["paths"]["/slots"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("SlotIn")
    assert "GetSlot" in post["responses"]["201"]["links"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"/api/v1/slots" in docs.data


# (method, path template, scope, body)
OPS = [
    ("POST", "/api/v1/slots", "slots:write", "slot"),
    ("GET", "/api/v1/slots", "slots:read", None),
    ("GET", "/api/v1/slots/{slot}", "slots:read", None),
    ("DELETE", "/api/v1/slots/{slot}", "slots:write", None),
    ("POST", "/api/v1/bookings/{booking}/attendance", "bookings:write", {"status": "attended"}),
    ("GET", "/api/v1/bookings", "bookings:read", None),
    ("GET", "/api/v1/therapists", "slots:read", None),
    ("GET", "/api/v1/stats", "stats:read", None),
]


def _post(client, path, **kwargs):
    return client.open(path, method="POST", **kwargs)


def _call(client, method, path, headers, body):
    return client.open(path, method=method, headers=headers, json=body)


@pytest.mark.parametrize(("method", "path", "scope", "body"), OPS)
def test_every_operation_needs_its_scope_a_live_key_and_the_own_practice(
    client, session, net, method, path, scope, body
):
    slot = make_slot(session, net.ther_x)
    other = make_slot(session, net.ther_y)
    from tests.notifications.helpers import make_booking

    booking = make_booking(session, net.a, net.ther_x, start_at=NOW - dt.timedelta(hours=2))
    other_booking = make_booking(session, net.b, net.ther_y, start_at=NOW - dt.timedelta(hours=2))
    without = make_key(session, NOW, net.ther_x, [s for s in ALL_SCOPES if s != scope])
    full = make_key(session, NOW, net.ther_x)
    revoked = make_key(session, NOW, net.ther_x)
    session.scalar(select(ApiKey).order_by(ApiKey.id.desc())).revoked_at = NOW
    session.commit()
    url = path.format(slot=slot.id, booking=booking.id)
    payload = _slot_body(net) if body == "slot" else body

    assert _call(client, method, url, {}, payload).status_code == 401
    assert _call(client, method, url, auth(revoked), payload).status_code == 401
    assert _call(client, method, url, auth("ptm_nope_x"), payload).status_code == 401
    refused = _call(client, method, url, auth(without), payload)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 403
    if "{" in path:  # another practice's object: as if it did not exist
        foreign = path.format(slot=other.id, booking=other_booking.id)
        assert _call(client, method, foreign, auth(full), payload).status_code == 404
    assert _call(client, method, url, auth(full), payload).status_code in (200, 201)


def test_unknown_api_path_and_method_answer_in_problem_json(client, session, net):
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    missing = client.get("/api/v1/nothing", headers=auth(raw))
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.put("/api/v1/slots", headers=auth(raw))
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"


def test_validation_errors_name_the_field(client, session, net):
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    past = _post(
        client,
        "/api/v1/slots",
        headers=auth(raw),
        json=_slot_body(net, start=(NOW - dt.timedelta(hours=1)).isoformat()),
    )
    assert past.status_code == 422
    assert past.get_json()["errors"][0]["field"] == "start"
    bad = _post(client, "/api/v1/slots", headers=auth(raw), json={"therapist_id": "x", "start": 3})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} >= {"therapist_id", "start"}
    foreign = _post(
        client, "/api/v1/slots", headers=auth(raw), json=_slot_body(net, therapist_id=net.ther_y.id)
    )
    assert foreign.status_code == 422
    assert foreign.get_json()["errors"][0]["field"] == "therapist_id"
    assert session.scalar(select(func.count(Slot.id))) == 0


def test_every_call_with_a_key_is_audited_also_refused_ones(client, session, net):
    raw = make_key(session, NOW, net.ther_x, ["slots:read"])
    session.commit()
    client.get("/api/v1/slots", headers=auth(raw))
    _post(client, "/api/v1/slots", headers=auth(raw), json=_slot_body(net))
    session.expire_all()
    calls = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "api.call").order_by(AuditEvent.id)
    ).all()
    assert [(c.details["operation"], c.details["status"]) for c in calls] == [
        ("list_slots", 200),
        ("post_slot", 403),
    ]


def test_idempotency_key_same_body_same_slot_other_body_conflict(client, session, net):
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    headers = {**auth(raw), "Idempotency-Key": "abc-1"}
    first = _post(client, "/api/v1/slots", headers=headers, json=_slot_body(net))
    again = _post(client, "/api/v1/slots", headers=headers, json=_slot_body(net))
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    other = _post(client, "/api/v1/slots", headers=headers, json=_slot_body(net, minutes=60))
    assert other.status_code == 409
    assert session.scalar(select(func.count(Slot.id))) == 1


def test_idempotency_key_from_threads_at_once_creates_one_slot(app, session, net, monkeypatch):
    """Four requests with one key at once. Posting is slowed down so that all four are inside
    it together (on PostgreSQL they really overlap; SQLite runs them one after the other)."""
    from ptmatch.web.api import views

    real_post = views.offers.post_slot

    def slow_post(*args, **kwargs):
        pause(0.3)
        return real_post(*args, **kwargs)

    monkeypatch.setattr(views.offers, "post_slot", slow_post)
    raw = make_key(session, NOW, net.ther_x)
    # Used a moment ago: no request updates the key row, which would queue them on its lock.
    session.scalar(select(ApiKey)).last_used_at = NOW
    session.commit()
    barrier = threading.Barrier(4)
    answers = []

    def post():
        with app.test_client() as c:
            barrier.wait()
            answers.append(
                _post(
                    c,
                    "/api/v1/slots",
                    headers={**auth(raw), "Idempotency-Key": "race-1"},
                    json=_slot_body(net),
                )
            )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.get_json()["id"] for a in answers}) == 1
    session.expire_all()
    assert session.scalar(select(func.count(Slot.id))) == 1


def test_slot_posted_through_the_api_is_offered_and_booked_like_one_from_the_portal(
    client, session, net, clock
):
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    posted = _post(client, "/api/v1/slots", headers=auth(raw), json=_slot_body(net))
    assert posted.status_code == 201, posted.get_json()
    slot_id = posted.get_json()["id"]
    assert posted.get_json()["status"] == "offering"
    assert posted.get_json()["offers"]["pending"] >= 1  # auto mode: the first wave went out
    offer = session.scalar(select(Offer).where(Offer.slot_id == slot_id))
    assert offer.patient_id == net.a.id

    from ptmatch.domain import offers as offers_domain
    from ptmatch.web import current_settings

    with client.application.app_context():
        settings = current_settings()
    offers_domain.accept_offer(session, NOW, offer, net.a.user, settings)
    session.commit()

    state = client.get(f"/api/v1/slots/{slot_id}", headers=auth(raw)).get_json()
    assert state["status"] == "booked"
    assert state["booking"]["initials"] == net.a.initials
    listed = client.get("/api/v1/bookings", headers=auth(raw)).get_json()
    assert [b["slot_id"] for b in listed["items"]] == [slot_id]
    booking_id = listed["items"][0]["id"]
    too_early = _post(
        client,
        f"/api/v1/bookings/{booking_id}/attendance",
        headers=auth(raw),
        json={"status": "attended"},
    )
    assert too_early.status_code == 422
    clock.advance(hours=31)
    marked = _post(
        client,
        f"/api/v1/bookings/{booking_id}/attendance",
        headers=auth(raw),
        json={"status": "attended"},
    )
    assert marked.status_code == 200 and marked.get_json()["status"] == "attended"


def test_cancel_through_the_api_withdraws_offers_and_tells_patients(client, session, net):
    raw = make_key(session, NOW, net.ther_x)
    slot = make_slot(session, net.ther_x)
    offer = make_offer(session, slot, net.a)
    session.commit()
    answer = client.delete(f"/api/v1/slots/{slot.id}", headers=auth(raw))
    assert answer.status_code == 200 and answer.get_json()["status"] == "cancelled"
    session.expire_all()
    assert session.get(Offer, offer.id).status == OfferStatus.WITHDRAWN
    kept = client.get(f"/api/v1/slots/{slot.id}", headers=auth(raw))
    assert kept.status_code == 200 and kept.get_json()["status"] == "cancelled"
    again = client.delete(f"/api/v1/slots/{slot.id}", headers=auth(raw))
    assert again.status_code == 422


def test_listing_pages_by_cursor_without_gaps_or_repeats(client, session, net):
    raw = make_key(session, NOW, net.ther_x)
    ids = [
        make_slot(session, net.ther_x, start_at=NOW + dt.timedelta(days=2 + i // 2, hours=i)).id
        for i in range(7)
    ]
    session.commit()
    seen, cursor = [], None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/slots{query}", headers=auth(raw)).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    bad = client.get("/api/v1/slots?cursor=!!", headers=auth(raw))
    assert bad.status_code == 422
    status = client.get("/api/v1/slots?status=booked", headers=auth(raw)).get_json()
    assert status["items"] == []


def test_key_pages_show_the_key_once_and_revoke_it(client, session, net, login_as):
    login_as(net.ther_x.user)
    page = client.post(
        "/praxis/schnittstelle/schluessel",
        data={"key-name": "PVS", "key-scopes": ["slots:read"]},
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    session.rollback()  # a fresh read
    key = session.scalar(select(ApiKey))
    raw = html.split('user-select-all text-break d-block">', 1)[1].split("<", 1)[0]
    assert raw.startswith(key.prefix) and key.key_hash not in html
    assert client.get("/api/v1/slots", headers=auth(raw)).status_code == 200
    assert raw not in client.get("/praxis/schnittstelle/").get_data(as_text=True)
    empty = client.post("/praxis/schnittstelle/schluessel", data={"key-name": ""})
    assert empty.status_code == 422
    client.post(f"/praxis/schnittstelle/schluessel/{key.id}/widerrufen")
    assert client.get("/api/v1/slots", headers=auth(raw)).status_code == 401


def test_a_therapist_without_second_factor_or_another_practice_cannot_manage_keys(
    client, session, net, login_as
):
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    key = session.scalar(select(ApiKey))
    login_as(net.ther_y.user)
    assert client.post(f"/praxis/schnittstelle/schluessel/{key.id}/widerrufen").status_code == 404
    assert client.get("/api/v1/slots", headers=auth(raw)).status_code == 200
    login_as(net.sec_x)
    assert client.get("/praxis/schnittstelle/").status_code == 403


def test_stats_are_the_practice_figures_of_the_period(client, session, net):
    raw = make_key(session, NOW, net.ther_x)
    make_slot(session, net.ther_x, start_at=NOW + dt.timedelta(hours=30))
    make_slot(session, net.ther_y, start_at=NOW + dt.timedelta(hours=30))
    session.commit()
    answer = client.get("/api/v1/stats?from=2026-11-01&to=2026-11-30", headers=auth(raw))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["from"], body["to"]) == ("2026-11-01", "2026-11-30")
    assert body["figures"]["scope"] == "practice"
    assert body["figures"]["slots_posted"] == 1  # X's slot, not Y's
    default = client.get("/api/v1/stats", headers=auth(raw)).get_json()
    assert default["to"] == "2026-11-24" and default["from"] == "2026-10-28"
    for bad in ("from=2026-12-01&to=2026-11-01", "from=2024-01-01&to=2026-01-02", "from=x"):
        assert client.get(f"/api/v1/stats?{bad}", headers=auth(raw)).status_code == 422


def test_keys_and_failed_keys_are_rate_limited_like_the_forms(app, session, net, settings):
    import dataclasses

    from ptmatch import create_app

    limited = create_app(dataclasses.replace(settings, RATE_LIMIT_API=3, RATE_LIMIT_LOGIN=2))
    client = limited.test_client()
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    answers = [client.get("/api/v1/slots", headers=auth(raw)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    over = client.get("/api/v1/slots", headers=auth(raw))
    assert over.mimetype == "application/problem+json" and over.headers["Retry-After"]
    wrong = [client.get("/api/v1/slots", headers=auth("ptm_x_y")).status_code for _ in range(3)]
    assert wrong == [401, 401, 429]
    limited.extensions["ptmatch_engine"].dispose()
