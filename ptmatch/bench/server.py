"""Figures 3-5 against the app under gunicorn (`wsgi:app`, 4 workers of the chosen class).

3. contention: one slot offered to 100 patients; 100 clients each open their own offer
   page (GET: session cookie and CSRF token), wait at a barrier, and GET it again at once
   (the burst of readers: the floor that any 100 requests cost), then wait at a barrier
   again and POST "accept" at once.
   Exactly one booking must result, no request may fail (5xx, connection error, or a
   4xx other than the "already taken" answer); latency is measured per GET and per POST,
   and the figure is p95(accepts) / p95(GETs) of the same pages in the same run.
   Besides, in this process: the winner's own transaction (accept + commit against 99
   others) — its time and its number of SQL statements.
4. throughput: requests per second of an offer page (GET) and of /healthz, served by the
   same server in the same run, alternating; the ratio is offer page / healthz.
5. memory: peak RSS (VmHWM) of each gunicorn worker after 3 and 4.

The load generator runs in two child processes (threads inside), so the client does not
share one interpreter lock; client and server still share the machine's cores.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import threading
import time
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from ptmatch import clock, links
from ptmatch.bench import procs, webclient
from ptmatch.bench.matching import make_slot
from ptmatch.bench.stats import Missing, percentile, summary_ms
from ptmatch.models import (
    Booking,
    Offer,
    OfferMode,
    OfferStatus,
    Patient,
    PatientStatus,
    Practice,
    Slot,
    SlotStatus,
    Therapist,
    User,
)

ALLOWED_LOSER_STATUS = {200, 302, 303, 409, 410}


class Server:
    """gunicorn on a free port; `with Server(...) as s:` starts it and waits for /healthz."""

    def __init__(
        self,
        run_dir: Path,
        database_url: str,
        workers: int = 4,
        worker_class: str = procs.WORKER_CLASS,
        threads: int = procs.THREADS,
    ):
        if not (procs.REPO_ROOT / "wsgi.py").exists():
            raise Missing("wsgi.py not built yet")
        self.port = procs.free_port()
        self.child = procs.gunicorn(
            run_dir,
            database_url,
            self.port,
            workers=workers,
            worker_class=worker_class,
            threads=threads,
            BASE_URL=f"http://127.0.0.1:{self.port}",
            # The bench is one client address measuring throughput: the per-client rate
            # limits (issue 16) would answer it 429.
            RATE_LIMITS_ENABLED=0,
        )
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads if worker_class == "gthread" else 1

    def __enter__(self):
        if not webclient.wait_until_up(self.port, timeout=60):
            self.child.stop()
            raise RuntimeError("gunicorn did not come up:\n" + self.child.log_text()[-3000:])
        return self

    def __exit__(self, *exc):
        self.child.stop()

    def worker_pids(self) -> list[int]:
        return procs.children_of(self.child.pid)


# --- data -----------------------------------------------------------------------------------------


def _patients(sessions: sessionmaker, rng: random.Random, count: int) -> list[int]:
    """Active patients with a verified account (they can answer an offer themselves)."""
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Patient.id)
                .join(User, User.id == Patient.user_id)
                .where(
                    Patient.status == PatientStatus.ACTIVE,
                    User.email_verified_at.is_not(None),
                    User.is_enabled.is_(True),
                )
                .order_by(Patient.id)
            )
        )
    if len(ids) < count:
        raise RuntimeError(f"need {count} patients with an account, the region has {len(ids)}")
    return rng.sample(ids, count)


def offered_slot(
    sessions: sessionmaker,
    rng: random.Random,
    patient_ids: list[int],
    ttl: dt.timedelta = dt.timedelta(hours=6),
) -> tuple[int, list[str]]:
    """A manual-mode slot with one pending offer per patient; returns (slot id, tokens)."""
    from ptmatch.domain.tokens import new_token

    with sessions() as session:
        now = clock.now()
        therapist_id = rng.choice(
            list(session.scalars(select(Therapist.id).where(Therapist.approved_at.is_not(None))))
        )
        therapist = session.get(Therapist, therapist_id)
        practice = session.get(Practice, therapist.practice_id)
        slot = make_slot(rng, now, therapist, practice, OfferMode.MANUAL, days=(3, 10))
        slot.current_wave = 1
        session.add(slot)
        session.flush()
        tokens = []
        expires = min(now + ttl, slot.offer_deadline_at)
        for pid in patient_ids:
            token, digest = new_token()
            session.add(
                Offer(
                    slot_id=slot.id,
                    patient_id=pid,
                    wave=1,
                    token_hash=digest,
                    status=OfferStatus.PENDING,
                    score=0,
                    sent_at=now,
                    expires_at=expires,
                )
            )
            tokens.append(token)
        session.commit()
        return slot.id, tokens


def _close(sessions: sessionmaker, slot_ids: list[int]) -> None:
    if not slot_ids:
        return
    with sessions() as session:
        session.execute(
            update(Offer)
            .where(Offer.slot_id.in_(slot_ids), Offer.status == OfferStatus.PENDING)
            .values(status=OfferStatus.WITHDRAWN)
        )
        session.execute(
            update(Slot)
            .where(Slot.id.in_(slot_ids), Slot.status == SlotStatus.OFFERING)
            .values(status=SlotStatus.CANCELLED, closed_at=clock.now())
        )
        session.commit()


# --- 3. contention --------------------------------------------------------------------------------


def _prepare_client(port: int, token: str) -> tuple[webclient.Form, dict]:
    page = webclient.request(port, "GET", links.offer(token))
    if page.status == 404:
        raise Missing("offer token page /o/<token> not built yet")
    if page.status != 200:
        raise RuntimeError(f"GET /o/<token> answered {page.status}")
    form = webclient.find_form(page.text, links.offer(token))
    if form is None or "csrf_token" not in form.fields:
        raise Missing("offer token page has no accept form with a CSRF token yet")
    return form, page.cookies()


def contention_round(
    server: Server, sessions: sessionmaker, tokens: list[str], slot_id: int
) -> dict:
    clients = len(tokens)
    prepared = [_prepare_client(server.port, t) for t in tokens]
    barrier = threading.Barrier(clients)
    results: list[tuple[int | None, float, str]] = [(None, 0.0, "")] * clients
    reads: list[tuple[int | None, float]] = [(None, 0.0)] * clients

    def client(i: int) -> None:
        form, jar = prepared[i]
        try:
            conn = webclient.connect(server.port)
            barrier.wait(timeout=60)
            started = time.perf_counter()
            page = webclient.request(
                server.port,
                "GET",
                links.offer(tokens[i]),
                headers={"Cookie": webclient.cookie_header(jar)},
                conn=conn,
            )
            reads[i] = (page.status, time.perf_counter() - started)
            # Every reader done before anyone connects again: an idle open connection holds
            # a sync worker, which would starve the readers still queued.
            barrier.wait(timeout=120)
            conn = webclient.connect(server.port)
            barrier.wait(timeout=60)
            resp, elapsed = webclient.post_form(server.port, form, jar, conn=conn)
            results[i] = (resp.status, elapsed, "")
        except Exception as err:  # counted as an error, never raised
            results[i] = (None, 0.0, type(err).__name__)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as session:
        bookings = (
            session.scalar(select(func.count(Booking.id)).where(Booking.slot_id == slot_id)) or 0
        )
        accepted = (
            session.scalar(
                select(func.count(Offer.id)).where(
                    Offer.slot_id == slot_id, Offer.status == OfferStatus.ACCEPTED
                )
            )
            or 0
        )
    statuses: dict[str, int] = {}
    errors = 0
    for status, _elapsed, exc in results:
        key = str(status) if status is not None else exc
        statuses[key] = statuses.get(key, 0) + 1
        if status is None or status not in ALLOWED_LOSER_STATUS:
            errors += 1
    return {
        "bookings": bookings,
        "accepted_offers": accepted,
        "errors": errors,
        "statuses": statuses,
        "latencies": [r[1] for r in results if r[0] is not None],
        "get_latencies": [r[1] for r in reads if r[0] == 200],
        "get_errors": sum(1 for r in reads if r[0] != 200),
    }


def contention(
    server: Server, sessions: sessionmaker, *, rounds: int, clients: int, seed: int
) -> dict:
    rng = random.Random(seed)
    per_round, latencies, get_latencies, slot_ids = [], [], [], []
    statuses: dict[str, int] = {}
    try:
        for _round in range(rounds):
            # Fresh draw each round: last round's winner is booked now and no longer eligible.
            slot_id, tokens = offered_slot(sessions, rng, _patients(sessions, rng, clients))
            slot_ids.append(slot_id)
            result = contention_round(server, sessions, tokens, slot_id)
            latencies.extend(result.pop("latencies"))
            get_latencies.extend(result.pop("get_latencies"))
            for k, v in result["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
            per_round.append(result)
    finally:
        _close(sessions, slot_ids)
    bookings = [r["bookings"] for r in per_round]
    accept, read = summary_ms(latencies), summary_ms(get_latencies)
    ratio = (
        round(accept["p95_ms"] / read["p95_ms"], 2)
        if accept.get("p95_ms") and read.get("p95_ms")
        else None
    )
    return {
        "rounds": len(per_round),
        "clients": clients,
        "worker_class": server.worker_class,
        "workers": server.workers,
        "threads": server.threads,
        "get_latency": read,
        "get_errors": sum(r["get_errors"] for r in per_round),
        "accept_get_p95_ratio": ratio,
        "winner": winner_transaction(sessions, rng, others=clients - 1),
        "bookings_per_round": {"min": min(bookings), "max": max(bookings)},
        "exactly_one_booking": all(b == 1 for b in bookings),
        "errors": sum(r["errors"] for r in per_round),
        "statuses": statuses,
        "latency": summary_ms(latencies),
    }


def winner_transaction(sessions: sessionmaker, rng: random.Random, *, others: int) -> dict:
    """The winner's own work, in this process against the same database: accept one offer
    of a slot offered to `others` + 1 patients, and commit. Time and SQL statements (the
    SAVEPOINTs and the COMMIT included; the loading of the offer and its patient excluded)."""
    from sqlalchemy import event

    from ptmatch.db import settings_of
    from ptmatch.domain import offers as offer_domain

    times, cpu, counts = [], [], []
    slot_ids = []
    try:
        for _ in range(5):
            slot_id, _tokens = offered_slot(sessions, rng, _patients(sessions, rng, others + 1))
            slot_ids.append(slot_id)
            with sessions() as session:
                offer = session.scalar(
                    select(Offer).where(Offer.slot_id == slot_id).order_by(Offer.id).limit(1)
                )
                user = offer.patient.user
                _ = (offer.slot.status, user.role, user.is_enabled)
                statements = []
                engine = session.get_bind()

                def count(*_args, statements=statements):
                    statements.append(1)

                event.listen(engine, "before_cursor_execute", count)
                try:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    offer_domain.accept_offer(
                        session, clock.now(), offer, user, settings_of(session)
                    )
                    session.commit()
                    times.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - cpu_started)
                finally:
                    event.remove(engine, "before_cursor_execute", count)
                counts.append(len(statements) + 1)  # + the COMMIT (not a cursor statement)
    finally:
        _close(sessions, slot_ids)
    return {
        "others": others,
        "time": summary_ms(times),
        "cpu": summary_ms(cpu),  # SQLite: all the work; PostgreSQL: the client side only
        "statements": {"min": min(counts), "max": max(counts)},
    }


# --- 4. throughput --------------------------------------------------------------------------------


def _load_process(port: int, path: str, go, seconds: float, threads: int, queue, ready) -> None:
    """Child process: `threads` loops of GET `path` for `seconds` (wall clock) from the moment
    the parent says go (after every child has started: on a busy machine starting a child
    can take longer than a fixed head start)."""
    import http.client as hc
    import time as t

    ready.put(1)
    go.wait()
    start_at = t.time()

    done = [0] * threads
    failed = [0] * threads
    samples: list[float] = []

    def loop(i: int) -> None:
        while t.time() < start_at:
            t.sleep(0.001)
        end = start_at + seconds
        while t.time() < end:
            began = t.perf_counter()
            try:
                conn = hc.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                ok = resp.status == 200
            except OSError:
                ok = False
            if t.time() > end:
                break  # finished after the window: not counted
            if ok:
                done[i] += 1
                if len(samples) < 20000:
                    samples.append(t.perf_counter() - began)
            else:
                failed[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((sum(done), sum(failed), samples))


def measure_rps(port: int, path: str, seconds: float, processes: int = 2, threads: int = 4) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    children = [
        ctx.Process(target=_load_process, args=(port, path, go, seconds, threads, queue, ready))
        for _ in range(processes)
    ]
    for c in children:
        c.start()
    for _ in children:
        ready.get(timeout=120)
    go.set()
    results = [queue.get(timeout=seconds + 120) for _ in children]
    for c in children:
        c.join(timeout=30)
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    samples = [s for r in results for s in r[2]]
    return {
        "requests": done,
        "failed": failed,
        "seconds": seconds,
        "rps": round(done / seconds, 1),
        "p50_ms": round(1000 * percentile(samples, 50), 2) if samples else None,
    }


def throughput(server: Server, sessions: sessionmaker, *, seconds: float, seed: int) -> dict:
    rng = random.Random(seed + 1)
    patient_id = _patients(sessions, rng, 1)
    slot_id, tokens = offered_slot(sessions, rng, patient_id, ttl=dt.timedelta(days=2))
    try:
        page = webclient.request(server.port, "GET", links.offer(tokens[0]))
        if page.status == 404:
            raise Missing("offer token page /o/<token> not built yet")
        paths = {"offer_page": links.offer(tokens[0]), "healthz": "/healthz"}
        totals = {k: {"requests": 0, "failed": 0, "seconds": 0.0, "p50": []} for k in paths}
        for _round in range(2):  # alternate, so drift hits both alike
            for name, path in paths.items():
                r = measure_rps(server.port, path, seconds / 2)
                totals[name]["requests"] += r["requests"]
                totals[name]["failed"] += r["failed"]
                totals[name]["seconds"] += r["seconds"]
                if r["p50_ms"] is not None:
                    totals[name]["p50"].append(r["p50_ms"])
    finally:
        _close(sessions, [slot_id])
    out = {}
    for name, t in totals.items():
        out[name] = {
            "rps": round(t["requests"] / t["seconds"], 1),
            "failed": t["failed"],
            "p50_ms": round(sum(t["p50"]) / len(t["p50"]), 2) if t["p50"] else None,
        }
    trivial = out["healthz"]["rps"]
    out["ratio"] = round(out["offer_page"]["rps"] / trivial, 2) if trivial else None
    return out


# --- 5. memory ------------------------------------------------------------------------------------


def memory(server: Server, after_offer_traffic: bool) -> dict:
    """Peak RSS of the workers; `after_offer_traffic` False means they served /healthz only."""
    workers = [procs.memory_kb(pid) | {"pid": pid} for pid in server.worker_pids()]
    peaks = [w.get("VmHWM", 0) for w in workers]
    return {
        "workers": len(workers),
        "peak_rss_mb": round(max(peaks) / 1024, 1) if peaks else None,
        "per_worker_mb": [round(p / 1024, 1) for p in peaks],
        "after_offer_traffic": after_offer_traffic,
    }
