"""Schemathesis against the app: every operation with generated requests, then stateful
sequences along the OpenAPI links (post a slot → read it → cancel it). No 5xx, and every
response matches the document. Runs on both engines (the suite's database)."""

from __future__ import annotations

import datetime as dt
import itertools

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.config import SchemathesisConfig

from tests.api.helpers import auth, make_key
from tests.conftest import NOW
from tests.factories import empty_tables_quickly, make_network, make_slot


def _settings(**kw):
    return hypothesis.settings(
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        **kw,
    )


# Schema-valid is not business-valid: a start in the past, an unknown cursor or a clash is a
# 422 with field details by design, so "valid data must be accepted" does not apply.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture
def app(settings, engine):
    """The app without rate limits: the frozen test clock never ends a limit's window, and
    hundreds of generated calls come from one key (test_api.py tests the limits)."""
    import dataclasses

    from ptmatch import create_app

    app = create_app(dataclasses.replace(settings, RATE_LIMITS_ENABLED=False))
    yield app
    app.extensions["ptmatch_engine"].dispose()


@pytest.fixture
def key_headers(session):
    net = make_network(session)
    make_slot(session, net.ther_x)
    raw = make_key(session, NOW, net.ther_x)
    session.commit()
    return auth(raw)


def test_every_operation_conforms(app, key_headers):
    """Each operation with generated (valid and invalid) requests, all built-in checks but
    the one above, including that a missing or broken key is refused. The schemathesis pytest
    plugin does not run under this pytest, so the test drives hypothesis itself."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @_settings(max_examples=30)
        def check(case):
            case.call_and_validate(headers=key_headers, excluded_checks=EXCLUDED)

        check()


def test_stateful_sequences_along_the_links(app, engine, session):
    # ignored_auth re-sends with broken credentials, but get_call_kwargs puts the valid key
    # back; the per-operation test above runs that check properly. use_after_free expects a
    # 404 after DELETE, but DELETE /slots/{id} cancels: the slot stays readable as
    # "cancelled" (test_cancel_through_the_api_... checks that). negative_data_rejection:
    # before_call below completes slot bodies, also those generated to be invalid; the
    # per-operation test runs that check on untouched requests.
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "ignored_auth": {"enabled": False},
                "use_after_free": {"enabled": False},
                "negative_data_rejection": {"enabled": False},
            }
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    world = {}
    posts = {"created": 0}

    def fresh_world():
        # Every example starts from the same data: responses that depend on what earlier
        # examples left behind (list lengths, cursors) would make hypothesis' replay differ.
        empty_tables_quickly(engine)
        net = make_network(session)
        make_slot(session, net.ther_x)
        raw = make_key(session, NOW, net.ther_x)
        session.commit()
        world.update(headers=auth(raw), therapist_id=net.ther_x.id, posted=itertools.count())

    class Workflow(schema.as_state_machine()):
        def setup(self):
            fresh_world()

        def get_call_kwargs(self, case):
            return {"headers": world["headers"]}

        def before_call(self, case, **kwargs):
            # Random bodies almost never name the practice's therapist and a bookable time, so
            # the links would never be followed: every slot post gets both (4 h apart, so no
            # clash) and keeps its generated length and mode (which may be invalid).
            if case.method == "POST" and case.path == "/slots" and isinstance(case.body, dict):
                start = NOW + dt.timedelta(days=2, hours=4 * next(world["posted"]))
                case.body = {
                    **case.body,
                    "therapist_id": world["therapist_id"],
                    "start": start.isoformat(),
                    "modality": "in_person",
                    "kind": "sprechstunde",
                }

        def after_call(self, response, case):
            if case.method == "POST" and case.path == "/slots" and response.status_code == 201:
                posts["created"] += 1

    Workflow.run(settings=_settings(max_examples=15, stateful_step_count=6))
    assert posts["created"] >= 1, "the workflow never posted a slot, so no link was followed"
