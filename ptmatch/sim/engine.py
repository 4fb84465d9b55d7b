"""A discrete-event simulation of a region on a simulated clock, driving the real domain.

Nothing of the matching or offer logic is copied here. The simulation only decides what
people do and when; ptmatch decides everything else:

- therapists post freed slots with ``offers.post_slot`` (auto mode: the first wave is sent
  by the real offer machine under the policy's WAVE_RULES);
- the scheduler's own ``sweep`` expires offers, sends next waves and closes slots;
- patients answer with ``offers.accept_offer`` / ``offers.decline_offer`` (callers without
  e-mail through the secretariat account, in office hours), or not at all;
- bookings end with ``offers.cancel_booking_by_patient`` (the domain re-posts the slot) or
  ``offers.mark_booking`` (attended / no-show);
- ``checkins.run_checkins`` runs daily and patients confirm with
  ``patients.confirm_still_looking``;
- the figures come from ``stats.compute`` - the code behind the dashboards.

Randomness: the region comes from ``ptmatch.bench.generate`` with the seed; the exogenous
events (arrivals, postings) from one stream seeded with it, identical for every policy; each
patient's answer to a slot from a stream seeded with (seed, patient, slot), so a patient
answers the same slot the same way under every policy. Same seed, same JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import math
import multiprocessing
import random
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, event, func, select, update
from sqlalchemy.orm import Session

from ptmatch.bench import generate
from ptmatch.config import Settings
from ptmatch.db import make_engine, make_session_factory
from ptmatch.domain import access, checkins, match_columns, matching, offers, patients, stats
from ptmatch.domain.errors import DomainError
from ptmatch.models import (
    Booking,
    BookingStatus,
    CareStage,
    EntryStatus,
    Modality,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Role,
    Slot,
    SlotKind,
    SlotStatus,
    Therapist,
    User,
    WaitlistEntry,
)
from ptmatch.scheduler.tasks.sweep import sweep
from ptmatch.sim.model import POLICIES, Policy, Region

BERLIN = ZoneInfo("Europe/Berlin")
START = dt.datetime(2027, 1, 4, 6, 0, tzinfo=dt.UTC)  # a Monday morning, fixed: no wall clock
SWEEP_EVERY = dt.timedelta(hours=4)  # plus a sweep at every offer's and slot's deadline
THERAPISTS_PER_PRACTICE = 1.45  # the bench generator's mix of 1-3 therapists
KEY_FIGURES = (
    "fill_rate_before_start",
    "attendance_rate",
    "share_first_appointment_within_4_weeks",
    "share_first_offer_within_4_weeks",
    "days_to_first_appointment_median",
    "slots_posted",
    "slots_filled_before_start",
    "offers_per_booking",
    "hours_to_booking_median",
    "places_per_year",
)


@dataclass
class Result:
    policy: str
    figures: dict
    invariants: dict
    events: int = 0

    def as_dict(self) -> dict:
        return {**self.figures, "invariants": self.invariants, "events": self.events}


# --- the scratch region ----------------------------------------------------------------------


def prepare_region(region: Region, seed: int, weeks: float, workdir: Path) -> tuple[Path, int]:
    """Generate the region once into a SQLite file (copied per policy). Returns the file and
    the number of patients waiting at the start; those after it arrive during the run."""
    arrivals = math.ceil(region.arrivals_per_week * weeks * 1.5) + 5
    size = region.waiting + arrivals
    therapists = max(3, round(region.practices * THERAPISTS_PER_PRACTICE))
    path = workdir / "region.sqlite"
    url = f"sqlite:///{path}"
    generate.reset_database(url, force=True)
    engine = make_engine(url)
    try:
        spec = generate.Spec(
            size=size,
            seed=seed,
            extra_ratio=0.0,
            patients_per_therapist=max(1, size // therapists),
        )
        generate.generate(engine, spec, START)
        with engine.begin() as conn:
            _care_stages(conn, region, seed)
            # The patients of the future are not registered yet: off every list until they come.
            conn.execute(
                # (off every list: the match columns say so too, see match_columns)
                update(Patient)
                .where(Patient.id > region.waiting)
                .values(status="inactive", matchable=False, in_pool=False)
            )
            conn.execute(
                update(WaitlistEntry)
                .where(WaitlistEntry.patient_id > region.waiting)
                .values(status="removed", removed_reason="left", removed_at=START)
            )
    finally:
        engine.dispose()
    return path, region.waiting


def ptv11_days_before(region: Region, seed: int, patient_id: int) -> float:
    """How many days before registering the patient's PTV 11 form is dated (drawn once per
    patient, the same under every policy)."""
    return random.Random(f"{seed}:ptv11:{patient_id}").uniform(0, region.ptv11_max_days_before)


def _care_stages(conn, region: Region, seed: int) -> None:
    """Who holds a PTV 11 form (looks for therapy) and who looks for a Sprechstunde first. The
    patients waiting at the start get their form's date now; those of the future on arrival."""
    rows = conn.execute(
        select(Patient.id, Patient.created_at, func.coalesce(PatientClinical.urgent, False))
        .outerjoin(PatientClinical, PatientClinical.patient_id == Patient.id)
        .order_by(Patient.id)
    ).all()
    rng = random.Random(f"{seed}:stages")
    holders, dates = [], []
    for pid, created, urgent in rows:
        holds = rng.random() < region.p_ptv11 or bool(urgent)
        if not holds:
            continue
        holders.append(pid)
        if pid <= region.waiting:
            moment = created - dt.timedelta(days=ptv11_days_before(region, seed, pid))
            dates.append({"pid": pid, "day": moment.astimezone(BERLIN).date()})
    # The generator draws its own stages and PTV 11 dates: the simulator's model replaces both.
    conn.execute(update(Patient).values(care_stage=CareStage.SPRECHSTUNDE, ptv11_date=None))
    for chunk in range(0, len(holders), 500):
        conn.execute(
            update(Patient)
            .where(Patient.id.in_(holders[chunk : chunk + 500]))
            .values(care_stage=CareStage.THERAPY)
        )
    if dates:
        table = Patient.__table__
        conn.execute(
            table.update()
            .where(table.c.id == bindparam("pid"))
            .values(ptv11_date=bindparam("day")),
            dates,
        )


# --- one run ---------------------------------------------------------------------------------


@dataclass(order=True)
class Event:
    at: dt.datetime
    seq: int
    kind: str = field(compare=False)
    data: tuple = field(compare=False, default=())


@dataclass(frozen=True)
class Posting:
    at: dt.datetime
    therapist_index: int
    start_at: dt.datetime
    kind: SlotKind
    minutes: int


def exogenous(region: Region, seed: int, start: dt.datetime, end: dt.datetime, waiting: int):
    """Arrivals (patient ids in order) and postings: the same for every policy."""
    rng = random.Random(f"{seed}:exogenous")
    arrivals, postings = [], []
    t, pid = start, waiting
    while region.arrivals_per_week > 0:
        t += dt.timedelta(weeks=rng.expovariate(region.arrivals_per_week))
        if t >= end:
            break
        pid += 1
        arrivals.append((t, pid))
    kinds = list(region.kinds)
    weights = [region.kinds[k] for k in kinds]
    t = start
    while region.slots_per_week > 0:
        t += dt.timedelta(weeks=rng.expovariate(region.slots_per_week))
        if t >= end:
            break
        share, lo, hi = rng.choices(region.lead_days, [row[0] for row in region.lead_days])[0]
        begin = _working_hour(t + dt.timedelta(days=rng.uniform(lo, hi)), rng)
        kind = SlotKind(rng.choices(kinds, weights)[0])
        postings.append(
            Posting(t, rng.randrange(1 << 30), begin, kind, 25 if kind == SlotKind.AKUT else 50)
        )
    return arrivals, postings


def _working_hour(moment: dt.datetime, rng: random.Random) -> dt.datetime:
    """The next weekday at a full or half hour between 08:00 and 18:30 Berlin time."""
    local = moment.astimezone(BERLIN)
    day = local.date()
    while True:
        if day.weekday() < 5:
            slot = dt.datetime.combine(
                day, dt.time(rng.randint(8, 18), rng.choice((0, 30))), tzinfo=BERLIN
            )
            if slot > local:
                return slot.astimezone(dt.UTC)
        day += dt.timedelta(days=1)


def _scratch_pragmas(dbapi_connection, _record) -> None:
    """A scratch database nobody else opens and nobody needs after a crash: no syncing to
    disk, a larger page cache, temporary tables in memory (after ptmatch.db's own pragmas)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


class Run:
    """One policy on its own copy of the region."""

    def __init__(
        self,
        region: Region,
        policy: Policy,
        seed: int,
        db_path: Path,
        waiting: int,
        end: dt.datetime,
        *,
        check: bool = False,
        progress: Callable[[float], None] | None = None,
    ):
        self.region, self.policy, self.seed, self.end = region, policy, seed, end
        self.check, self.progress = check, progress
        url = f"sqlite:///{db_path}"
        self.engine = make_engine(url)
        event.listen(self.engine, "connect", _scratch_pragmas)
        self.settings = Settings(
            DATABASE_URL=url, WAVE_RULES=policy.wave_rules, BASE_URL="https://sim.invalid"
        )
        self.session: Session = make_session_factory(self.engine, self.settings)()
        self.waiting = waiting
        self.heap: list[Event] = []
        self.seq = 0
        self.last_offer = 0
        self.last_booking = 0
        self.last_slot = 0
        self.sweep_times: set[dt.datetime] = set()
        self.violations = {"hard_filter": 0}
        self.events = 0
        s = self.session
        self.therapists = list(
            s.scalars(
                select(Therapist).where(Therapist.approved_at.is_not(None)).order_by(Therapist.id)
            )
        )
        self.secretary = s.scalar(select(User).where(User.role == Role.SECRETARY).limit(1))

    # -- the event queue --
    def at(self, when: dt.datetime, kind: str, *data) -> None:
        self.seq += 1
        heapq.heappush(self.heap, Event(when, self.seq, kind, data))

    def sweep_at(self, when: dt.datetime) -> None:
        when = when.replace(microsecond=0) + dt.timedelta(seconds=1)
        if when not in self.sweep_times and when < self.end:
            self.sweep_times.add(when)
            self.at(when, "sweep")

    def rng(self, *key) -> random.Random:
        return random.Random(":".join(str(k) for k in (self.seed, *key)))

    # -- running --
    def run(self, start: dt.datetime, arrivals, postings) -> Result:
        for when, pid in arrivals:
            self.at(when, "arrive", pid)
        for posting in postings:
            self.at(posting.at, "post", posting)
        t = start
        while t < self.end:
            self.at(t, "sweep")
            t += SWEEP_EVERY
        day = start.replace(hour=2, minute=0)
        while day < self.end:
            self.at(day, "daily")
            day += dt.timedelta(days=1)
        total = (self.end - start).total_seconds()
        done = 0.0
        while self.heap:
            event = heapq.heappop(self.heap)
            if event.at >= self.end:
                break
            self.events += 1
            getattr(self, f"on_{event.kind}")(event.at, *event.data)
            self.session.commit()
            self._collect(event.at)
            if self.progress is not None:
                now_done = (event.at - start).total_seconds() / total
                if now_done - done >= 0.01:
                    self.progress(now_done - done)
                    done = now_done
        sweep(self.session, self.end, self.settings)
        self.session.commit()
        if self.progress is not None:
            self.progress(1.0 - done)
        figures = stats.compute(
            self.session,
            self.end,
            stats.Period(start, self.end),
            stats.Scope(),
            access.STATS_ALL_FIGURES,
        )
        result = Result(self.policy.name, figures, self._invariants(), self.events)
        self.session.close()
        self.engine.dispose()
        return result

    # -- what people do --
    def on_arrive(self, now: dt.datetime, patient_id: int) -> None:
        s = self.session
        stage = s.scalar(select(Patient.care_stage).where(Patient.id == patient_id))
        form = None
        if stage == CareStage.THERAPY:
            before = dt.timedelta(days=ptv11_days_before(self.region, self.seed, patient_id))
            form = (now - before).astimezone(BERLIN).date()
        s.execute(
            update(Patient)
            .where(Patient.id == patient_id)
            .values(
                status=PatientStatus.ACTIVE,
                created_at=now,
                status_changed_at=now,
                last_confirmed_at=now,
                ptv11_date=form,
            )
        )
        s.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.patient_id == patient_id)
            .values(status=EntryStatus.ACTIVE, added_at=now, removed_at=None, removed_reason=None)
        )
        match_columns.refresh_match_columns(s, [patient_id])  # bulk statements above
        self.sweep_at(now)  # the real scheduler would offer open slots to them within seconds

    def on_post(self, now: dt.datetime, posting: Posting) -> None:
        therapist = self.therapists[posting.therapist_index % len(self.therapists)]
        modality = Modality.IN_PERSON if therapist.offers_in_person else Modality.VIDEO
        try:
            offers.post_slot(
                self.session,
                now,
                therapist.user,
                therapist,
                start_at=posting.start_at,
                minutes=posting.minutes,
                kind=posting.kind,
                modality=modality,
                settings=self.settings,
            )
        except DomainError:
            self.session.rollback()  # a clash or too short notice: the therapist gives up

    def on_sweep(self, now: dt.datetime) -> None:
        sweep(self.session, now, self.settings)

    def on_daily(self, now: dt.datetime) -> None:
        checkins.run_checkins(self.session, now, self.settings)
        self.session.flush()
        asked = self.session.scalars(
            select(Patient.id).where(Patient.checkin_sent_at == now).order_by(Patient.id)
        ).all()
        for pid in asked:
            rng = self.rng("checkin", pid, now.date())
            if rng.random() < self.region.p_checkin_confirm:
                self.at(now + dt.timedelta(hours=rng.uniform(5, 72)), "confirm", pid)

    def on_confirm(self, now: dt.datetime, patient_id: int) -> None:
        patient = self.session.get(Patient, patient_id)
        if patient is not None and patient.status in (PatientStatus.ACTIVE, PatientStatus.PAUSED):
            user = patient.user or self.secretary
            patients.confirm_still_looking(self.session, now, patient, user)

    def on_answer(self, now: dt.datetime, offer_id: int, accept: bool) -> None:
        offer = self.session.get(Offer, offer_id)
        if offer is None or offer.status != OfferStatus.PENDING:
            return
        patient = self.session.get(Patient, offer.patient_id)
        actor = patient.user if patient.user is not None else self.secretary
        try:
            if accept:
                offers.accept_offer(self.session, now, offer, actor, self.settings)
            else:
                offers.decline_offer(self.session, now, offer, actor, self.settings)
        except DomainError:
            self.session.rollback()  # too late, already taken: the domain said no

    def on_cancel(self, now: dt.datetime, booking_id: int) -> None:
        booking = self.session.get(Booking, booking_id)
        if booking is None or booking.status != BookingStatus.CONFIRMED:
            return
        patient = self.session.get(Patient, booking.patient_id)
        actor = patient.user if patient.user is not None else self.secretary
        try:
            offers.cancel_booking_by_patient(self.session, now, actor, booking, self.settings)
        except DomainError:
            self.session.rollback()  # inside the notice period: the patient has to come

    def on_outcome(self, now: dt.datetime, booking_id: int, no_show: bool) -> None:
        booking = self.session.get(Booking, booking_id)
        if booking is None or booking.status != BookingStatus.CONFIRMED:
            return
        slot = self.session.get(Slot, booking.slot_id)
        status = BookingStatus.NO_SHOW if no_show else BookingStatus.ATTENDED
        try:
            offers.mark_booking(self.session, now, slot.therapist.user, booking, status)
        except DomainError:
            self.session.rollback()

    # -- reacting to what the domain did --
    def _collect(self, now: dt.datetime) -> None:
        s = self.session
        # One cheap look at the newest ids first: most events create no offer, slot or booking.
        newest = s.execute(
            select(
                select(func.max(Offer.id)).where(Offer.slot_id.is_not(None)).scalar_subquery(),
                select(func.max(Slot.id)).scalar_subquery(),
                select(func.max(Booking.id)).scalar_subquery(),
            )
        ).one()
        if (newest[0] or 0) <= self.last_offer and (newest[1] or 0) <= self.last_slot:
            if (newest[2] or 0) <= self.last_booking:
                return
        new_offers = s.scalars(
            select(Offer)
            .where(Offer.id > self.last_offer, Offer.slot_id.is_not(None))
            .order_by(Offer.id)
        ).all()
        if new_offers:
            self.last_offer = new_offers[-1].id
            if self.check:
                self._check_hard_filters(new_offers)
        for offer in new_offers:
            self.sweep_at(offer.expires_at)
            self._plan_answer(offer)
        for slot in s.scalars(select(Slot).where(Slot.id > self.last_slot).order_by(Slot.id)):
            self.last_slot = slot.id
            self.sweep_at(slot.offer_deadline_at)
        for booking in s.scalars(
            select(Booking).where(Booking.id > self.last_booking).order_by(Booking.id)
        ):
            self.last_booking = booking.id
            self._plan_booking(booking)

    def _plan_answer(self, offer: Offer) -> None:
        region = self.region
        rng = self.rng("answer", offer.patient_id, offer.slot_id)
        if rng.random() >= region.p_answer:
            return
        accept = rng.random() >= region.p_decline
        delay = dt.timedelta(
            hours=rng.lognormvariate(math.log(region.answer_median_hours), region.answer_sigma)
        )
        phone = rng.random() < region.phone_only or offer.patient.user_id is None
        when = _awake(offer.sent_at, phone) + delay
        if phone:
            when = _awake(when, True)
        self.at(when, "answer", offer.id, accept)

    def _plan_booking(self, booking: Booking) -> None:
        slot = self.session.get(Slot, booking.slot_id)
        rng = self.rng("booking", booking.slot_id, booking.patient_id)
        if rng.random() < self.region.p_cancel and slot.start_at > booking.created_at:
            self.at(
                booking.created_at + (slot.start_at - booking.created_at) / 2, "cancel", booking.id
            )
            return
        no_show = rng.random() < self.region.p_no_show
        self.at(slot.start_at + dt.timedelta(minutes=slot.minutes), "outcome", booking.id, no_show)

    # -- invariants --
    def _check_hard_filters(self, new_offers) -> None:
        """Each new offer's patient passes the real hard filters at the moment it was sent
        (asked with the offers of that moment taken back, inside a savepoint)."""
        s = self.session
        by_slot: dict[int, list[Offer]] = {}
        for offer in new_offers:
            by_slot.setdefault(offer.slot_id, []).append(offer)
        for slot_id, batch in by_slot.items():
            slot = s.get(Slot, slot_id)
            nested = s.begin_nested()
            s.execute(delete(Offer).where(Offer.id.in_([o.id for o in batch])))
            allowed = set(matching.prefilter(s, slot, batch[0].sent_at))
            nested.rollback()
            self.violations["hard_filter"] += sum(1 for o in batch if o.patient_id not in allowed)

    def _invariants(self) -> dict:
        s = self.session
        doubled = s.scalar(
            select(func.count()).select_from(
                select(Booking.slot_id)
                .group_by(Booking.slot_id)
                .having(func.count(Booking.id) > 1)
                .subquery()
            )
        )
        unanswered = s.scalar(
            select(func.count(Offer.id)).where(
                Offer.status == OfferStatus.PENDING, Offer.expires_at <= self.end
            )
        )
        answered_without_time = s.scalar(
            select(func.count(Offer.id)).where(
                Offer.status.in_([OfferStatus.ACCEPTED, OfferStatus.DECLINED]),
                Offer.responded_at.is_(None),
            )
        )
        booked_twice = s.scalar(
            select(func.count(Slot.id)).where(
                Slot.status == SlotStatus.BOOKED,
                ~select(Booking.id).where(Booking.slot_id == Slot.id).exists(),
            )
        )
        return {
            "slots_with_two_bookings": doubled,
            "booked_slots_without_booking": booked_twice,
            "offers_neither_answered_nor_expired": unanswered,
            "answers_without_time": answered_without_time,
            "hard_filter_violations": self.violations["hard_filter"] if self.check else None,
        }


def _awake(moment: dt.datetime, office: bool) -> dt.datetime:
    """The moment, moved to the next waking hour (07-22 Berlin), or for a phone-only caller to
    the next office hour of the secretariat (weekdays 09-17)."""
    local = moment.astimezone(BERLIN)
    lo, hi = (9, 17) if office else (7, 22)
    while True:
        weekday_ok = local.weekday() < 5 or not office
        if weekday_ok and lo <= local.hour < hi:
            return local.astimezone(dt.UTC)
        if weekday_ok and local.hour < lo:
            local = local.replace(hour=lo, minute=0, second=0, microsecond=0)
            continue
        local = (local + dt.timedelta(days=1)).replace(hour=lo, minute=0, second=0, microsecond=0)


# --- all policies ----------------------------------------------------------------------------


def _run_policy(region, policy, seed, template, waiting, end, arrivals, postings, check, tick):
    """One policy on its own copy of the region (in this process or a worker)."""
    path = template.with_name(f"{policy.name}.sqlite")
    shutil.copyfile(template, path)
    run = Run(region, policy, seed, path, waiting, end, check=check, progress=tick)
    return run.run(START, arrivals, postings).as_dict()


class _QueueTick:
    """A worker's progress callback: (policy, fraction) into a queue the parent reads."""

    def __init__(self, queue, name: str):
        self.queue, self.name = queue, name

    def __call__(self, fraction: float) -> None:
        self.queue.put((self.name, fraction))


def simulate(
    region: Region,
    *,
    seed: int,
    months: float,
    workdir: Path,
    policies: tuple[Policy, ...] = POLICIES,
    check: bool = False,
    progress: Callable[[str, float], None] | None = None,
    jobs: int = 1,
) -> dict:
    """Every policy on a copy of the same region and the same event stream. JSON-ready.

    ``jobs`` > 1 runs that many policies at once in worker processes: the runs share
    nothing but the read-only template, so the JSON is the same as with one job."""
    weeks = months * 52 / 12
    end = START + dt.timedelta(weeks=weeks)
    template, waiting = prepare_region(region, seed, weeks, workdir)
    arrivals, postings = exogenous(region, seed, START, end, waiting)
    common = (seed, template, waiting, end, arrivals, postings, check)
    results = {}
    if jobs <= 1 or len(policies) <= 1:
        for policy in policies:
            tick = (lambda f, name=policy.name: progress(name, f)) if progress else None
            results[policy.name] = _run_policy(region, policy, *common, tick)
    else:
        results = _run_parallel(region, policies, common, progress, jobs)
    return {
        "region": dataclasses.asdict(region),
        "seed": seed,
        "months": months,
        "start": START.isoformat(),
        "end": end.isoformat(),
        "arrivals": len(arrivals),
        "postings": len(postings),
        "policies": results,
    }


def _run_parallel(region, policies, common, progress, jobs: int) -> dict:
    """The policies in worker processes; their progress comes back through a queue."""
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
        queue = manager.Queue()
        futures = {
            policy.name: pool.submit(
                _run_policy, region, policy, *common, _QueueTick(queue, policy.name)
            )
            for policy in policies
        }
        pending = set(futures.values())
        while pending:
            try:
                name, fraction = queue.get(timeout=0.5)
            except Empty:
                pending = {f for f in pending if not f.done()}
                continue
            if progress is not None:
                progress(name, fraction)
        while not queue.empty():
            name, fraction = queue.get()
            if progress is not None:
                progress(name, fraction)
        return {name: future.result() for name, future in futures.items()}


def table(doc: dict) -> str:
    """The policy table: one row per key figure, one column per policy."""
    names = list(doc["policies"])
    rows = [["figure", *names]]
    for key in KEY_FIGURES:
        row = [key]
        for name in names:
            value = doc["policies"][name].get(key)
            if value is None:
                row.append("–")
            elif key.startswith(("share", "fill_rate", "attendance")):
                row.append(f"{value * 100:.1f} %")
            else:
                row.append(f"{value:g}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
