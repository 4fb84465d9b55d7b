"""/metrics: counters move with a post -> accept flow (and only for committed work), gauges
come from the database, a latency histogram per endpoint, loopback or bearer token only."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from ptmatch.domain import audit
from ptmatch.models import Offer, OfferStatus, OutboxMessage, OutboxStatus
from ptmatch.ops import metrics
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from tests.conftest import NOW
from tests.factories import make_network, make_offer, make_slot

TOKEN = "metrics-token-0123456789abcdef"


def make_mail(session, key: str, created_at: dt.datetime, status=OutboxStatus.PENDING):
    mail = OutboxMessage(
        dedupe_key=key,
        kind="test",
        to_addr="nobody@example.org",
        subject="s",
        body_text="t",
        message_id=f"<{key}@test>",
        status=status,
        next_attempt_at=created_at + dt.timedelta(days=1),  # not due: the job leaves it
        created_at=created_at,
    )
    session.add(mail)
    return mail


def scrape(client, **kwargs) -> dict[tuple, float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name, **labels) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


COUNTED = [
    "ptmatch_slots_posted_total",
    "ptmatch_offers_sent_total",
    "ptmatch_offers_accepted_total",
    "ptmatch_offers_taken_total",
    "ptmatch_bookings_total",
    "ptmatch_mails_sent_total",
    "ptmatch_logins_total",
]


@pytest.fixture
def net(session):
    waited = [NOW - (90 - i) * dt.timedelta(days=1) for i in range(3)]
    net = make_network(
        session,
        ther_x={"session_minutes": 45},
        a={"added_at": waited[0]},
        more_on_x=[{"added_at": waited[1]}, {"added_at": waited[2]}],
    )
    session.commit()
    return net


def test_counters_move_with_post_then_accept(app, client, session, login_as, net, settings):
    before = scrape(client)
    login_as(net.ther_x.user)
    form = {"start_time": "14:00", "minutes": "45", "kind": "sprechstunde"}
    form |= {"modality": "in_person", "mode": "auto", "tomorrow": "Morgen"}
    assert client.post("/termine/neu", data=form).status_code == 302
    session.commit()
    offer_a = session.scalar(select(Offer).where(Offer.patient_id == net.a.id))
    assert offer_a is not None
    login_as(net.a.user)
    answer = client.post(f"/patient/angebot/{offer_a.id}", data={"answer": "accept"})
    assert answer.status_code in (200, 302)
    # the outbox job (scheduler side) with sessions watched as the runner watches them
    sessions = app.extensions["ptmatch_sessions"]
    (outbox,) = [j for j in all_jobs() if j.name == "outbox"]
    mails = run_job(sessions, outbox, settings)
    assert mails >= 4  # three offers, the booking, two "taken"
    after = scrape(client)
    moved = {name: value(after, name) - value(before, name) for name in COUNTED}
    assert moved == {
        "ptmatch_slots_posted_total": 1,
        "ptmatch_offers_sent_total": 3,
        "ptmatch_offers_accepted_total": 1,
        "ptmatch_offers_taken_total": 2,
        "ptmatch_bookings_total": 1,
        "ptmatch_mails_sent_total": mails,
        "ptmatch_logins_total": 0,  # login_as does not log in through the form
    }
    assert value(after, "ptmatch_open_offers") == 0
    seen = value(
        after, "ptmatch_request_seconds_count", endpoint="slots.new", method="POST", status="302"
    )
    assert seen >= 1


def test_rolled_back_work_is_not_counted(app, session):
    sessions = app.extensions["ptmatch_sessions"]
    counter = metrics.COUNTERS["account.login"]
    start = counter._value.get()
    with sessions() as s:
        audit.record(s, NOW, "account.login")
        s.flush()
        s.rollback()  # the same session goes on: its rolled-back event must not come back
        audit.record(s, NOW, "account.login")
        try:
            with s.begin_nested():
                audit.record(s, NOW, "account.login")
                raise RuntimeError("undo the savepoint")
        except RuntimeError:
            pass
        s.commit()
    assert counter._value.get() - start == 1


def test_gauges_come_from_the_database(client, session, net, clock):
    slot = make_slot(session, net.ther_x, start_at=NOW + dt.timedelta(days=2))
    make_offer(session, slot, net.a)
    make_offer(session, slot, net.b, status=OfferStatus.DECLINED)
    make_mail(session, "m1", NOW - dt.timedelta(minutes=10))
    make_mail(session, "m2", NOW - dt.timedelta(minutes=1))
    make_mail(session, "m3", NOW - dt.timedelta(days=3), OutboxStatus.DEAD)
    session.commit()
    values = scrape(client)
    assert value(values, "ptmatch_open_offers") == 1
    assert value(values, "ptmatch_outbox_queue_depth") == 2
    assert value(values, "ptmatch_outbox_oldest_pending_seconds") == 600
    assert value(values, "ptmatch_outbox_dead") == 1


def test_job_ages(client, sessions, settings, clock):
    for job in all_jobs():
        if job.name in ("heartbeat", "offer_sweep"):
            run_job(sessions, job, settings)
    clock.advance(seconds=42)
    values = scrape(client)
    assert value(values, "ptmatch_job_last_run_age_seconds", job="offer_sweep") == 42
    assert value(values, "ptmatch_scheduler_heartbeat_age_seconds") == 42


@pytest.mark.parametrize(
    "environ, headers, allowed",
    [
        ({"REMOTE_ADDR": "127.0.0.1"}, {}, True),
        ({"REMOTE_ADDR": "::1"}, {}, True),
        ({"REMOTE_ADDR": "203.0.113.9"}, {}, False),
        ({"REMOTE_ADDR": "10.0.0.8"}, {}, False),
        # through a reverse proxy on the same host: not loopback
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.9"}, False),
        ({"REMOTE_ADDR": "203.0.113.9"}, {"Authorization": f"Bearer {TOKEN}"}, True),
        ({"REMOTE_ADDR": "203.0.113.9"}, {"Authorization": "Bearer wrong-token-0123456789"}, False),
        ({"REMOTE_ADDR": "203.0.113.9"}, {"Authorization": f"Basic {TOKEN}"}, False),
    ],
)
def test_loopback_or_bearer_token(settings, engine, environ, headers, allowed):
    from ptmatch import create_app

    app = create_app(dataclasses.replace(settings, METRICS_TOKEN=TOKEN))
    try:
        response = app.test_client().get("/metrics", environ_base=environ, headers=headers)
        assert response.status_code == (200 if allowed else 403)
    finally:
        app.extensions["ptmatch_engine"].dispose()


def test_without_a_token_setting_no_bearer_gets_in(client):
    response = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
        headers={"Authorization": "Bearer "},
    )
    assert response.status_code == 403
