"""The simulator on a tiny region: deterministic for a seed, the invariants hold, and a
region where nobody answers fills nothing."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ptmatch.sim import engine, model

TINY = dataclasses.replace(
    model.PRESETS["tiny"], waiting=40, arrivals_per_week=6, slots_per_week=14
)
MONTHS = 0.3


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    return engine.simulate(
        TINY, seed=7, months=MONTHS, workdir=tmp_path_factory.mktemp("a"), check=True
    )


def test_same_seed_same_json(first, tmp_path):
    again = engine.simulate(TINY, seed=7, months=MONTHS, workdir=tmp_path, check=True)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)


def test_policies_in_worker_processes_give_the_same_json(first, tmp_path):
    seen = []
    parallel = engine.simulate(
        TINY,
        seed=7,
        months=MONTHS,
        workdir=tmp_path,
        check=True,
        jobs=2,
        progress=lambda name, fraction: seen.append((name, fraction)),
    )
    assert json.dumps(parallel, sort_keys=True) == json.dumps(first, sort_keys=True)
    # the workers' progress reached the parent: every policy to the end
    for name in first["policies"]:
        assert sum(f for n, f in seen if n == name) == pytest.approx(1.0)


def test_every_policy_reports_the_figures_of_stats(first):
    assert set(first["policies"]) == {"adaptive", "sequential", "everyone"}
    for figures in first["policies"].values():
        for key in (
            "fill_rate_before_start",
            "attendance_rate",
            "share_first_appointment_within_4_weeks",
        ):
            assert key in figures
        assert figures["slots_posted"] > 5
    # something happened: offers were sent and slots were booked under every policy
    assert all(f["slots_filled"] > 0 for f in first["policies"].values())
    # the exogenous stream is shared: the same postings for every policy
    assert len({f["slots_posted"] for f in first["policies"].values()}) <= 2  # reposts differ


def test_invariants_hold(first):
    for name, figures in first["policies"].items():
        assert figures["invariants"] == {
            "slots_with_two_bookings": 0,
            "booked_slots_without_booking": 0,
            "offers_neither_answered_nor_expired": 0,
            "answers_without_time": 0,
            "hard_filter_violations": 0,
        }, name


def test_sequential_sends_one_offer_at_a_time_and_everyone_the_most(first):
    p = first["policies"]
    assert p["sequential"]["offers_sent"] <= p["adaptive"]["offers_sent"]
    assert p["adaptive"]["offers_sent"] <= p["everyone"]["offers_sent"]


def test_nobody_answers_nothing_is_filled(tmp_path):
    silent = dataclasses.replace(TINY, p_answer=0.0)
    doc = engine.simulate(
        silent, seed=7, months=MONTHS, workdir=tmp_path, policies=model.POLICIES[:1]
    )
    figures = doc["policies"]["adaptive"]
    assert figures["offers_sent"] > 0
    assert figures["slots_filled"] == 0 and figures["offers_accepted"] == 0
    assert figures["share_offers_expired"] > 0.5
    assert figures["invariants"]["offers_neither_answered_nor_expired"] == 0


def test_a_toml_file_overrides_a_preset(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text('preset = "bonn"\nname = "x"\nslots_per_week = 1.5\n', encoding="utf-8")
    region = model.load_region(None, path)
    assert (region.name, region.practices, region.slots_per_week) == ("x", 20, 1.5)
    path.write_text("nonsense = 1\n", encoding="utf-8")
    with pytest.raises(ValueError):
        model.load_region(None, path)


def test_some_patients_hold_a_ptv11_form_and_look_for_therapy(tmp_path):
    from sqlalchemy import create_engine, select

    from ptmatch.models import CareStage, Patient

    path, waiting = engine.prepare_region(TINY, 7, 1.0, tmp_path)
    db = create_engine(f"sqlite:///{path}")
    with db.connect() as conn:
        rows = conn.execute(
            select(Patient.id, Patient.care_stage, Patient.ptv11_date, Patient.created_at)
        ).all()
    db.dispose()
    stages = {stage for _id, stage, _day, _created in rows}
    assert stages == {CareStage.THERAPY, CareStage.SPRECHSTUNDE}
    for pid, stage, day, created in rows:
        if pid <= waiting:  # those waiting at the start: a form exactly where they look for therapy
            assert (day is not None) == (stage == CareStage.THERAPY), pid
            if day is not None:
                assert day <= created.astimezone(engine.BERLIN).date()
        else:  # the future's form is dated on arrival
            assert day is None
