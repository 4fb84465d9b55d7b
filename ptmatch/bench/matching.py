"""Figure 1: ranking candidates for a slot, next to the floor.

For a fixed set of slots (posted by random therapists of the region, weekdays 8-19 h, mostly
in person) every pass times, per slot and each in a fresh session:

- the floor (issue 17, ``floor_kind: "index_scan"``): the bare scan of the ids of active
  patients whose own reach box holds the practice — one table, no joins, no other filter:
  one index arm per radius in use (``status = 'active' AND max_distance_km = r AND lat/lon
  within r``), answered by the index ``(status, max_distance_km, lat, lon)``. The slot's
  context (coordinates, radii in use) is computed before the clock starts;
- `matching.prefilter(session, slot, now)`, the SELECT of the ids that pass the hard
  filters (issue 9's floor, kept as a figure of its own);
- `matching.rank_candidates(session, slot, now)`: filters, score, order and reasons for
  all of them (the same ids), and with `limit=10` (what posting a wave asks for).

The first pass warms the caches and is not counted; floor and ranking alternate which goes
first. The ratio is ranking p50 / floor p50. Besides wall time the CPU time of this process
is recorded: on SQLite that is all of the work and hardly disturbed by other load.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ptmatch.bench.stats import ms, need, percentile, summary_ms
from ptmatch.models import (
    Modality,
    OfferMode,
    Patient,
    PatientStatus,
    Practice,
    Slot,
    SlotKind,
    SlotStatus,
    Therapist,
)

BERLIN = ZoneInfo("Europe/Berlin")
TOP = 10
KM_PER_DEGREE = 111.195
FLOOR_KIND = "index_scan"


def reach_box_query(ctx, radii):
    """The floor's SELECT for a matching context: ids of active patients in their reach box
    (`radii`: the radii active patients chose, as matching.reach_values)."""
    if ctx.lat is None or ctx.lon is None or not radii:
        return select(Patient.id).where(Patient.id < 0)
    arms = []
    for radius in radii:
        box_lat = radius / KM_PER_DEGREE
        box_lon = radius / max(ctx.km_per_lon, 1.0)
        arms.append(
            and_(
                Patient.status == PatientStatus.ACTIVE,
                Patient.max_distance_km == radius,
                Patient.lat.between(ctx.lat - box_lat, ctx.lat + box_lat),
                Patient.lon.between(ctx.lon - box_lon, ctx.lon + box_lon),
            )
        )
    return select(Patient.id).where(or_(*arms))


def post_bench_slots(
    session: Session,
    now: dt.datetime,
    count: int,
    seed: int,
    offer_mode: OfferMode = OfferMode.MANUAL,
) -> list[int]:
    """Insert `count` offering slots (manual mode: nothing sends offers for them)."""
    rng = random.Random(seed)
    therapist_ids = list(
        session.scalars(
            select(Therapist.id).where(Therapist.approved_at.is_not(None)).order_by(Therapist.id)
        )
    )
    chosen = rng.sample(therapist_ids, min(count, len(therapist_ids)))
    slots = []
    for tid in chosen:
        therapist = session.get(Therapist, tid)
        practice = session.get(Practice, therapist.practice_id)
        slots.append(make_slot(rng, now, therapist, practice, offer_mode))
    session.add_all(slots)
    session.flush()
    return [s.id for s in slots]


def make_slot(
    rng: random.Random,
    now: dt.datetime,
    therapist: Therapist,
    practice: Practice,
    offer_mode: OfferMode = OfferMode.MANUAL,
    days: tuple[int, int] = (1, 14),
    modality: Modality | None = None,
) -> Slot:
    local_today = now.astimezone(BERLIN).date()
    day = local_today + dt.timedelta(days=rng.randint(*days))
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    minute = rng.randrange(8 * 60, 18 * 60 + 31, 30)
    start = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=BERLIN).astimezone(
        dt.UTC
    )
    if modality is None:
        video = therapist.offers_video and (not therapist.offers_in_person or rng.random() < 0.25)
        modality = Modality.VIDEO if video else Modality.IN_PERSON
    return Slot(
        practice_id=practice.id,
        therapist_id=therapist.id,
        start_at=start,
        minutes=therapist.session_minutes or 50,
        kind=rng.choices(
            (SlotKind.SPRECHSTUNDE, SlotKind.PROBATORIK, SlotKind.THERAPY_PLACE, SlotKind.AKUT),
            (40, 30, 25, 5),
        )[0],
        modality=modality,
        status=SlotStatus.OFFERING,
        offer_mode=offer_mode,
        wave_size=3,
        offer_ttl_minutes=720,
        offer_deadline_at=start - dt.timedelta(minutes=practice.offer_cutoff_minutes or 120),
        current_wave=0,
        created_at=now,
    )


def cancel_slots(session: Session, slot_ids: list[int], now: dt.datetime) -> None:
    session.execute(
        update(Slot).where(Slot.id.in_(slot_ids)).values(status=SlotStatus.CANCELLED, closed_at=now)
    )


def run(sessions: sessionmaker, now: dt.datetime, *, slots: int, passes: int, seed: int) -> dict:
    """Measure the floor and the ranking for `slots` slots over `passes` counted passes."""
    prefilter, rank_candidates, build_context, reach_values = need(
        "ptmatch.domain.matching", "prefilter", "rank_candidates", "build_context", "reach_values"
    )
    with sessions() as session:
        slot_ids = post_bench_slots(session, now, slots, seed)
        session.commit()
        radii = reach_values(session)
        floor_queries = {
            sid: reach_box_query(build_context(session, session.get(Slot, sid), now), radii)
            for sid in slot_ids
        }
        session.rollback()
    floor, rank, top, pre = [], [], [], []
    floor_cpu, rank_cpu, pre_cpu = [], [], []
    in_box: list[int] = []

    def index_scan(session, slot, _now):
        return list(session.scalars(floor_queries[slot.id]))

    counts: list[int] = []
    mismatches = 0

    def timed(func, sid, **kwargs):
        with sessions() as session:
            slot = session.get(Slot, sid)
            cpu = time.thread_time()
            started = time.perf_counter()
            result = func(session, slot, now, **kwargs)
            elapsed = time.perf_counter() - started
            cpu = time.thread_time() - cpu
            session.rollback()
        return (elapsed, cpu), result

    try:
        for p in range(passes + 1):
            for i, sid in enumerate(slot_ids):
                order = (
                    ("floor", "pre", "rank", "top")
                    if (i + p) % 2 == 0
                    else ("rank", "top", "pre", "floor")
                )
                got = {}
                for what in order:
                    if what == "floor":
                        got[what] = timed(index_scan, sid)
                    elif what == "pre":
                        got[what] = timed(prefilter, sid)
                    elif what == "rank":
                        got[what] = timed(rank_candidates, sid)
                    else:
                        got[what] = timed(rank_candidates, sid, limit=TOP)
                if p == 0:
                    in_box.append(len(got["floor"][1]))
                    ids = set(got["pre"][1])
                    ranked = {c.patient_id for c in got["rank"][1]}
                    mismatches += ids != ranked
                    counts.append(len(ids))
                    continue
                floor.append(got["floor"][0][0])
                pre.append(got["pre"][0][0])
                pre_cpu.append(got["pre"][0][1])
                rank.append(got["rank"][0][0])
                top.append(got["top"][0][0])
                floor_cpu.append(got["floor"][0][1])
                rank_cpu.append(got["rank"][0][1])
    finally:
        with sessions() as session:
            cancel_slots(session, slot_ids, now)
            session.commit()
    result = {
        "slots": len(slot_ids),
        "passes": passes,
        "candidates": {"p50": percentile(counts, 50), "max": max(counts) if counts else None},
        "floor_kind": FLOOR_KIND,
        "floor": summary_ms(floor),
        "in_reach_box": {"p50": percentile(in_box, 50), "max": max(in_box) if in_box else None},
        "prefilter": summary_ms(pre),
        "rank": summary_ms(rank),
        f"rank_top{TOP}": summary_ms(top),
        "same_ids": mismatches == 0,
        "mismatched_slots": mismatches,
        # CPU time of this process: all of the work on SQLite (in-process), the client side
        # only on PostgreSQL. Steadier than wall time on a busy machine.
        "cpu_p50_ms": {
            "floor": ms(percentile(floor_cpu, 50)),
            "rank": ms(percentile(rank_cpu, 50)),
            "prefilter": ms(percentile(pre_cpu, 50)),
        },
    }
    f50, r50 = result["floor"]["p50_ms"], result["rank"]["p50_ms"]
    result["ratio"] = round(r50 / f50, 2) if f50 and r50 else None
    return result
