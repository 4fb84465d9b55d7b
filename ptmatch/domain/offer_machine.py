"""The offer machine that free slots (``offers``) and group seats (``groups``) share.

An offer goes to one patient for one target, a slot or a group, in waves:
- Wave size and time to answer follow the lead time (``wave_params``): the practice's own
  rules, else the configured ``WAVE_RULES``.
- A wave is claimed by bumping the target's ``current_wave`` conditionally (``claim_wave``),
  so two transactions never send the same wave; each offer of it gets a fresh token and a
  mail (``write_offers``).
- An open offer ends exactly once, by a conditional UPDATE (``set_offer_status``): answered
  by its patient, or by the secretariat for a caller (``require_answerer``); taken or
  withdrawn while live, expired once dead (``close_offer``), the patient told where it matters.
- A next wave sent on the side of another action runs in a savepoint (``in_savepoint``).
- No answer deadline falls in the night (``offer_expiry``): one that would end between 22:00
  and 07:00 Berlin time moves to 08:00, unless the target's own deadline comes first.
- A patient without an account (phone-only) gets a longer window and a call task in the
  secretariat's queue instead of a mail (``ptmatch.domain.calls``).

What differs stays with the target: who is a candidate, what a wave's size means (slots:
open offers; groups: per free seat), what winning does, and when an offer can be answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ptmatch.catalog import N_
from ptmatch.config import Settings, valid_wave_rules
from ptmatch.domain import access, audit, calls
from ptmatch.domain.errors import NotAllowed
from ptmatch.domain.tokens import new_token
from ptmatch.models import GroupProgram, Offer, OfferStatus, Patient, Practice, Role, Slot, User
from ptmatch.notifications import outbox

Target = Slot | GroupProgram
BERLIN = ZoneInfo("Europe/Berlin")
NIGHT_START = dt.time(22, 0)  # no answer deadline after this ...
NIGHT_END = dt.time(7, 0)  # ... and before this (Berlin wall clock)
MORNING = dt.time(8, 0)  # where a night deadline moves to

# Why an offer cannot be answered (besides "taken", which says what was taken).
MSG_EXPIRED = N_("Die Antwortfrist für dieses Angebot ist abgelaufen.")
MSG_CLOSED = N_("Dieses Angebot ist nicht mehr offen.")


# --- waves ---------------------------------------------------------------------------------------


def wave_rules(practice: Practice | None, settings: Settings) -> list[tuple]:
    """The practice's own rules if set and sane, else the configured ones (WAVE_RULES)."""
    rules = practice.wave_rules if practice else None
    if rules and valid_wave_rules(rules):
        return [tuple(rule) for rule in rules]
    return [tuple(rule) for rule in settings.WAVE_RULES]


def wave_params(
    practice: Practice | None, start_at: dt.datetime, now: dt.datetime, settings: Settings
) -> tuple[int, int]:
    """(wave size, minutes to answer) for a target starting at `start_at`, seen at `now`:
    the closer it is, the more people and the shorter the deadline."""
    lead_hours = (start_at - now).total_seconds() / 3600
    rules = wave_rules(practice, settings)
    for max_hours, size, ttl in rules:
        if max_hours is None or lead_hours < max_hours:
            return size, ttl
    return rules[-1][1], rules[-1][2]


def offer_expiry(now: dt.datetime, ttl_minutes: int, deadline: dt.datetime) -> dt.datetime:
    """Minutes to answer from now, out of the night (``past_night``), but never past the
    target's offer deadline."""
    return min(past_night(now + dt.timedelta(minutes=ttl_minutes), deadline), deadline)


def past_night(at: dt.datetime, deadline: dt.datetime) -> dt.datetime:
    """A time between 22:00 and 07:00 Berlin moves to 08:00 that morning (PT-Termin's
    "overnight until the next morning"), unless `deadline` comes before then."""
    local = at.astimezone(BERLIN)
    clock_time = local.time()
    if NIGHT_END <= clock_time <= NIGHT_START:
        return at
    day = local.date() + dt.timedelta(days=1) if clock_time > NIGHT_START else local.date()
    morning = dt.datetime.combine(day, MORNING, tzinfo=BERLIN).astimezone(dt.UTC)
    return morning if morning <= deadline else at


def target_ref(target: Target) -> dict[str, int]:
    """The offer's foreign key to its target: {"slot_id": id} or {"group_id": id}."""
    return {"slot_id": target.id} if isinstance(target, Slot) else {"group_id": target.id}


def lock_target(session: Session, target: Target, *, wait: bool = False) -> bool:
    """Lock the target's row and refresh it; without `wait`, False when another transaction
    holds it (PostgreSQL; SQLite serialises writers anyway)."""
    model = type(target)
    locked = session.scalar(
        select(model)
        .where(model.id == target.id)
        .with_for_update(skip_locked=not wait)
        .execution_options(populate_existing=True)
    )
    return locked is not None


def claim_wave(session: Session, target: Target, size: int, ttl: int, *, live: Iterable) -> bool:
    """Bump the target's wave number if nobody else did since we read it and its status is
    still one of `live`. True: this transaction sends the wave."""
    model, seen = type(target), target.current_wave
    return (
        session.execute(
            update(model)
            .where(model.id == target.id, model.status.in_(list(live)), model.current_wave == seen)
            .values(current_wave=seen + 1, wave_size=size, offer_ttl_minutes=ttl)
            .execution_options(synchronize_session="fetch")
        ).rowcount
        == 1
    )


def live_pending(session: Session, now: dt.datetime, *where) -> int:
    """How many offers matching `where` are open and not yet past their deadline."""
    return (
        session.scalar(
            select(func.count(Offer.id)).where(
                Offer.status == OfferStatus.PENDING, Offer.expires_at > now, *where
            )
        )
        or 0
    )


@dataclass(frozen=True)
class OfferMail:
    """How one kind of offer is mailed: the mail kind, the page its token opens, the dedupe
    key of an offer's mail, and the start time the mail names."""

    kind: str
    link: Callable[[str], str]  # token -> path
    key: Callable[[Offer], str]
    when: dt.datetime


def write_offers(
    session: Session,
    now: dt.datetime,
    target: Target,
    picks,
    *,
    expires: dt.datetime,
    mail: OfferMail,
    actor: User | None = None,
    phone_expires: dt.datetime | None = None,
    **audit_extra,
) -> list[Offer]:
    """Offer the target's current wave to `picks`: ranked candidates (a new offer each) or
    earlier offers to send again (a waitlisted patient's seat offer re-uses its row). Every
    offer gets a fresh token, a mail and an ``offer.sent`` audit event. A phone-only patient's
    offer lasts until `phone_expires` (if given) and opens a call task."""
    patient_ids = [pick.patient_id for pick in picks]
    patients = {
        p.id: p
        for p in session.scalars(
            select(Patient).options(selectinload(Patient.user)).where(Patient.id.in_(patient_ids))
        )
    }
    ref = target_ref(target)
    written = []
    for pick in picks:
        token, digest = new_token()
        if isinstance(pick, Offer):
            offer = pick
        else:
            offer = Offer(patient_id=pick.patient_id, score=pick.score, **ref)
            offer.reasons = [
                [r.msgid, dict(r.params), r.points, bool(r.clinical)]
                for r in getattr(pick, "reasons", ())
            ]
            session.add(offer)
        offer.token_hash, offer.status, offer.wave = (
            digest,
            OfferStatus.PENDING,
            target.current_wave,
        )
        phone_only = calls.is_phone_only(patients[offer.patient_id])
        offer.sent_at, offer.expires_at, offer.responded_at, offer.responded_by_id = (
            now,
            phone_expires if phone_only and phone_expires is not None else expires,
            None,
            None,
        )
        session.flush()
        if phone_only:
            calls.open_offer_call(session, now, offer, target)
        mail_patient(
            session,
            now,
            patients[offer.patient_id],
            mail.kind,
            mail.key(offer),
            mail.link(token),
            when=mail.when,
            deadline=offer.expires_at,
        )
        audit.record(
            session,
            now,
            "offer.sent",
            actor,
            patient_id=offer.patient_id,
            practice_id=target.practice_id,
            **ref,
            offer_id=offer.id,
            wave=offer.wave,
            **audit_extra,
        )
        written.append(offer)
    return written


def in_savepoint(session: Session, target: Target, send: Callable[[], int]) -> int:
    """Run `send` (a next wave) in a savepoint: a conflict there (another transaction offered
    the same patient the same target a moment ago) must not undo the caller's work."""
    try:
        with session.begin_nested():
            return send()
    except IntegrityError:
        session.expire(target)
        return 0


# --- the life of an offer ----------------------------------------------------------------------


def set_offer_status(
    session: Session,
    offer_id: int,
    new: OfferStatus,
    now: dt.datetime,
    *,
    live: bool | None = None,
    actor: User | None = None,
) -> bool:
    """PENDING → new, only if still pending (and live / dead as asked). True if it changed."""
    stmt = update(Offer).where(Offer.id == offer_id, Offer.status == OfferStatus.PENDING)
    if live is True:
        stmt = stmt.where(Offer.expires_at > now)
    elif live is False:
        stmt = stmt.where(Offer.expires_at <= now)
    values = {"status": new}
    if new in (OfferStatus.ACCEPTED, OfferStatus.DECLINED):
        values.update(responded_at=now, responded_by_id=actor.id if actor else None)
    result = session.execute(stmt.values(**values).execution_options(synchronize_session="fetch"))
    return result.rowcount == 1


def lock_offers(session: Session, ids) -> None:
    """Row locks in id order, so two accepts touching the same offers cannot deadlock."""
    if ids:
        session.execute(
            select(Offer.id).where(Offer.id.in_(sorted(ids))).order_by(Offer.id).with_for_update()
        )


def close_offer(
    session: Session,
    now: dt.datetime,
    offer_id: int,
    patient_id: int,
    status: OfferStatus,
    /,
    *,
    actor: User | None = None,
    mail: tuple[str, str, str] | None = None,
    reason: str | None = None,
    **ids,
) -> OfferStatus | None:
    """End an open offer that its patient did not answer: `status` (TAKEN, WITHDRAWN, EXPIRED)
    while it is live, the patient told by `mail` (kind, dedupe key, link) if given; EXPIRED if
    it had lapsed already. Each is audited as ``offer.<status>`` with `ids` (the offer's id
    among them) and `reason`.
    Returns the status it got, or None when it was no longer open."""
    if set_offer_status(session, offer_id, status, now, live=True):
        if mail is not None:
            mail_patient(session, now, session.get(Patient, patient_id), *mail)
        extra = {"reason": reason} if reason is not None else {}
        audit.record(
            session, now, f"offer.{status.value}", actor, patient_id=patient_id, **ids, **extra
        )
        return status
    if set_offer_status(session, offer_id, OfferStatus.EXPIRED, now, live=False):
        audit.record(session, now, "offer.expired", None, patient_id=patient_id, **ids)
        return OfferStatus.EXPIRED
    return None


def withdraw_unreached(
    session: Session, now: dt.datetime, offer: Offer, target: Target, actor: User | None
) -> bool:
    """The secretariat could not reach a phone-only patient: their open offer is withdrawn
    (audited with reason ``not_reached``). True if it was still open and live."""
    closed = close_offer(
        session,
        now,
        offer.id,
        offer.patient_id,
        OfferStatus.WITHDRAWN,
        actor=actor,
        reason="not_reached",
        practice_id=target.practice_id,
        **target_ref(target),
        offer_id=offer.id,
    )
    return closed == OfferStatus.WITHDRAWN


def close_offers(
    session: Session,
    now: dt.datetime,
    offer_ids: Iterable[int],
    status: OfferStatus,
    /,
    *,
    mail: tuple[str, Callable[[int], str], str],
    actor: User | None = None,
    **ids,
) -> dict[int, OfferStatus]:
    """`close_offer` for many offers of one target in batched statements: one UPDATE …
    RETURNING for the live ones (→ `status`, each patient told by `mail`: kind, the dedupe
    key of an offer id, link), one for the lapsed ones (→ EXPIRED), one INSERT of outbox rows
    and one of audit rows per outcome. The same rows as `close_offer` per offer (each audit
    event names its ``offer_id``). Returns {offer id: status it got}."""
    offer_ids = sorted(set(offer_ids))
    if not offer_ids:
        return {}
    outcome: dict[int, OfferStatus] = {}
    kind, key, link = mail
    for new, live in ((status, True), (OfferStatus.EXPIRED, False)):
        deadline = Offer.expires_at > now if live else Offer.expires_at <= now
        changed = session.execute(
            update(Offer)
            .where(Offer.id.in_(offer_ids), Offer.status == OfferStatus.PENDING, deadline)
            .values(status=new)
            .returning(Offer.id, Offer.patient_id)
            .execution_options(synchronize_session=False)
        ).all()
        if not changed:
            continue
        for offer_id, _pid in changed:
            outcome[offer_id] = new
        if live:
            users = dict(
                session.execute(
                    select(Patient.id, User)
                    .join(User, User.id == Patient.user_id)
                    .where(Patient.id.in_({pid for _oid, pid in changed}))
                ).all()
            )
            outbox.enqueue_many(
                session,
                now,
                kind=kind,
                link_path=link,
                recipients=[(users[pid], key(oid)) for oid, pid in changed if pid in users],
            )
        audit.record_many(
            session,
            now,
            f"offer.{new.value}",
            actor if live else None,
            [{"patient_id": pid, **ids, "offer_id": oid} for oid, pid in changed],
        )
    # The ORM objects of these offers (if any are loaded) must not show the old status.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Offer) and obj.id in outcome:
            session.expire(obj, ["status"])
    return outcome


def mail_patient(
    session: Session, now: dt.datetime, patient: Patient, kind: str, key: str, link: str, **when
) -> None:
    """Mail the patient's account, if they have one (callers on the phone may not)."""
    user = patient.user if patient.user_id else None
    if user is not None:
        outbox.enqueue(
            session, now, kind=kind, dedupe_key=key, link_path=link, to_user=user, **when
        )


def require_answerer(session: Session, actor: User | None, patient: Patient) -> None:
    """The patient themselves, or a secretary who may act for them (a caller on the phone)."""
    if actor is not None and actor.is_enabled:
        if actor.role == Role.PATIENT and patient.user_id == actor.id:
            return
        if actor.role == Role.SECRETARY and access.patient_access(session, actor, patient).act:
            return
    raise NotAllowed(N_("Sie dürfen dieses Angebot nicht beantworten."))
