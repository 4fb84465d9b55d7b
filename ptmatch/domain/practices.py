"""Practices and therapists: sign-up, approval, practice set-up and both profiles.

A therapist account is requested with licence details (Approbation, LANR if any), gets
TOTP at its first login, and becomes usable only when an admin has approved it and
assigned it to a practice. `get_active_therapist` is the one question every practice-side
view asks ("approved and assigned to an active practice?").
"""

from __future__ import annotations

import datetime as dt
import re
import string
import unicodedata
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch import links
from ptmatch.catalog import (
    GENDERS,
    INSURANCES,
    LANGUAGES,
    METHODS,
    N_,
    POPULATIONS,
    PROBLEM_AREAS,
    Catalogue,
)
from ptmatch.domain import accounts, audit, geo
from ptmatch.domain.errors import InvalidInput, NotAllowed
from ptmatch.domain.passwords import check_password_policy
from ptmatch.models import Practice, Role, Therapist, User
from ptmatch.notifications import outbox

SESSION_MINUTES = (25, 120)
BUFFER_MINUTES = (0, 60)
LANR_RE = re.compile(r"^\d{9}$")
POSTCODE_RE = re.compile(r"^\d{5}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()/\-]{2,38}$")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
VIDEO_PLACEHOLDERS = {"slot_id", "token"}
_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


# --- lookups ---------------------------------------------------------------------------------


def get_therapist(session: Session, user: User | None) -> Therapist | None:
    """The therapist record of a user (approved or not), or None."""
    if user is None or user.role != Role.THERAPIST:
        return None
    return session.scalar(select(Therapist).where(Therapist.user_id == user.id))


def get_active_therapist(session: Session, user: User | None) -> Therapist | None:
    """The therapist if approved and assigned to an active practice; otherwise None.

    Every practice-side view (workbench, slots, groups) asks this before showing anything.
    """
    therapist = get_therapist(session, user)
    if therapist is None or not therapist.is_approved or therapist.practice_id is None:
        return None
    if therapist.practice is None or not therapist.practice.is_active:
        return None
    return therapist


def can_manage_practice(session: Session, actor: User | None, practice_id: int) -> bool:
    """May `actor` run the practice's calendar (slots, groups)? Its active therapists, and the
    secretaries who serve it."""
    from ptmatch.domain.access import served_practice_ids

    if actor is None or not actor.is_enabled:
        return False
    if actor.role == Role.THERAPIST:
        therapist = get_active_therapist(session, actor)
        return therapist is not None and therapist.practice_id == practice_id
    if actor.role == Role.SECRETARY:
        return practice_id in served_practice_ids(session, actor)
    return False


def slugify(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.lower().translate(_TRANSLITERATE))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:60].strip("-") or "praxis"


def unique_slug(session: Session, name: str) -> str:
    base = slugify(name)
    taken = set(session.scalars(select(Practice.slug).where(Practice.slug.like(base + "%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# --- validation helpers ----------------------------------------------------------------------


def _text(value: str | None, field: str, max_len: int, *, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(N_("Bitte ausfüllen."), field)
    if len(value) > max_len:
        raise InvalidInput(N_("Höchstens %(num)d Zeichen."), field, num=max_len)
    if "\x00" in value:
        raise InvalidInput(N_("Enthält ungültige Zeichen."), field)
    return value


def _postcode(value: str | None, field: str = "postcode") -> str:
    value = (value or "").strip()
    if value and not POSTCODE_RE.match(value):
        raise InvalidInput(N_("Bitte eine fünfstellige Postleitzahl angeben."), field)
    return value


def _phone(value: str | None, field: str = "phone") -> str:
    value = (value or "").strip()
    if value and not PHONE_RE.match(value):
        raise InvalidInput(N_("Bitte eine gültige Telefonnummer angeben."), field)
    return value


def _url(value: str | None, field: str, max_len: int = 300) -> str:
    value = _text(value, field, max_len)
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise InvalidInput(N_("Bitte eine Adresse mit https:// angeben."), field)
    return value


def _video_template(value: str | None, field: str = "video_link_template") -> str:
    value = _url(value, field)
    if not value:
        return value
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise InvalidInput(
            N_("Nur die Platzhalter {slot_id} und {token} sind erlaubt."), field
        ) from exc
    if not names <= VIDEO_PLACEHOLDERS:
        raise InvalidInput(N_("Nur die Platzhalter {slot_id} und {token} sind erlaubt."), field)
    return value


def _lanr(value: str | None) -> str:
    value = (value or "").replace(" ", "").strip()
    if value and not LANR_RE.match(value):
        raise InvalidInput(N_("Die LANR hat genau 9 Ziffern."), "lanr")
    return value


def _gender(value: str | None, field: str = "gender") -> str:
    value = value or "x"
    if value not in {code for code, _ in GENDERS}:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), field)
    return value


def _mask(catalogue: Catalogue, codes, field: str) -> int:
    codes = list(codes or [])
    unknown = [c for c in codes if c not in catalogue.by_code]
    if unknown:
        raise InvalidInput(N_("Bitte nur Einträge aus der Liste wählen."), field)
    return catalogue.to_mask(codes)


def _minutes(value, bounds: tuple[int, int], field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(N_("Bitte eine ganze Zahl angeben."), field)
    if not bounds[0] <= value <= bounds[1]:
        # Fixed msgids (translatable), one per range.
        raise InvalidInput(
            N_("Erlaubt sind 25 bis 120 Minuten.")
            if bounds == SESSION_MINUTES
            else N_("Erlaubt sind 0 bis 60 Minuten."),
            field,
        )
    return value


def _require_admin(actor: User | None) -> None:
    if actor is None or actor.role != Role.ADMIN:
        raise NotAllowed(N_("Nur die Verwaltung darf das."))


# --- sign-up and administration ----------------------------------------------------------------


def request_therapist_account(
    session: Session,
    now: dt.datetime,
    *,
    email: str,
    password: str,
    display_name: str,
    approbation: str,
    lanr: str = "",
    title: str = "",
    gender: str = "x",
    locale: str = "de",
) -> Therapist | None:
    """Request a therapist account: a THERAPIST user (no TOTP yet) and an unapproved Therapist.

    Returns None when the address already has an account: that owner gets the generic
    "already registered" mail and the caller shows the same confirmation (no enumeration).
    """
    display_name = _text(display_name, "display_name", 120, required=True)
    title = _text(title, "title", 60)
    approbation = _text(approbation, "approbation", 200, required=True)
    lanr = _lanr(lanr)
    gender = _gender(gender)
    email = accounts.check_new_email(session, email)
    check_password_policy(password)
    existing = session.scalar(select(User).where(User.email == email))
    if existing is not None:
        outbox.enqueue(
            session,
            now,
            kind="already_registered",
            to_user=existing,
            link_path=links.login(),
            dedupe_key=f"already_registered:{existing.id}:{now:%Y%m%d}",
        )
        return None
    user = accounts.create_user(
        session,
        now,
        email=email,
        password=password,
        role=Role.THERAPIST,
        display_name=display_name,
        locale=locale,
    )
    therapist = Therapist(
        user_id=user.id,
        practice_id=None,
        title=title,
        gender=gender,
        approbation=approbation,
        lanr=lanr,
        approved_at=None,
        languages_mask=LANGUAGES.to_mask(["de"]),
        insurances_mask=INSURANCES.all_mask,
        populations_mask=POPULATIONS.to_mask(["adults"]),
    )
    session.add(therapist)
    session.flush()
    audit.record(session, now, "therapist.requested", user, subject_user_id=user.id)
    return therapist


def approve_therapist(
    session: Session, now: dt.datetime, admin: User, therapist: Therapist
) -> Therapist:
    """Approve a requested therapist account (idempotent: a second call changes nothing)."""
    _require_admin(admin)
    if therapist.approved_at is not None:
        return therapist
    therapist.approved_at = now
    therapist.approved_by_id = admin.id
    session.flush()
    audit.record(
        session,
        now,
        "therapist.approved",
        admin,
        subject_user_id=therapist.user_id,
        practice_id=therapist.practice_id,
    )
    user = therapist.user or session.get(User, therapist.user_id)
    outbox.enqueue(
        session,
        now,
        kind="therapist_approved",
        to_user=user,
        link_path=links.login(),
        dedupe_key=f"therapist_approved:{therapist.id}",
    )
    return therapist


def create_practice(
    session: Session,
    now: dt.datetime,
    admin: User,
    *,
    name: str,
    slug: str | None = None,
    street: str = "",
    postcode: str = "",
    city: str = "",
    phone: str = "",
    website: str = "",
    booking_info: str = "",
    cancellation_policy: str = "",
    video_link_template: str = "",
    accepts_pool: bool = True,
) -> Practice:
    """Create a practice. The slug (its registration link /p/<slug>) is derived from the name
    unless given; coordinates come from the postcode table when the code is known."""
    _require_admin(admin)
    name = _text(name, "name", 200, required=True)
    if slug:
        slug = slug.strip().lower()
        if len(slug) > 80 or not SLUG_RE.match(slug):
            raise InvalidInput(N_("Nur Kleinbuchstaben, Ziffern und Bindestriche."), "slug")
        if session.scalar(select(Practice.id).where(Practice.slug == slug)) is not None:
            raise InvalidInput(N_("Dieser Kurzname ist schon vergeben."), "slug")
    else:
        slug = unique_slug(session, name)
    practice = Practice(name=name, slug=slug, created_at=now, is_active=True)
    _apply_practice_fields(
        session,
        practice,
        street=street,
        postcode=postcode,
        city=city,
        phone=phone,
        website=website,
        booking_info=booking_info,
        cancellation_policy=cancellation_policy,
        video_link_template=video_link_template,
        accepts_pool=accepts_pool,
    )
    session.add(practice)
    session.flush()
    audit.record(session, now, "practice.created", admin, practice_id=practice.id)
    return practice


def assign_therapist(
    session: Session, now: dt.datetime, admin: User, therapist: Therapist, practice: Practice | None
) -> Therapist:
    """Assign a therapist to a practice (several therapists share its waitlist); None unassigns."""
    _require_admin(admin)
    if practice is not None and not practice.is_active:
        raise InvalidInput(N_("Diese Praxis ist nicht aktiv."), "practice")
    previous = therapist.practice_id
    therapist.practice = practice
    session.flush()
    audit.record(
        session,
        now,
        "therapist.assigned",
        admin,
        subject_user_id=therapist.user_id,
        practice_id=therapist.practice_id,
        previous_practice_id=previous,
    )
    return therapist


# --- profiles ------------------------------------------------------------------------------

_PRACTICE_FIELDS = (
    "name",
    "street",
    "postcode",
    "city",
    "phone",
    "website",
    "booking_info",
    "cancellation_policy",
    "video_link_template",
    "accepts_pool",
)


def _apply_practice_fields(session: Session, practice: Practice, **fields) -> None:
    """Validate every given field first, then assign: a bad field leaves the practice unchanged."""
    clean: dict = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "name":
            clean[key] = _text(value, key, 200, required=True)
        elif key == "street":
            clean[key] = _text(value, key, 200)
        elif key == "city":
            clean[key] = _text(value, key, 120)
        elif key == "postcode":
            clean[key] = _postcode(value)
        elif key == "phone":
            clean[key] = _phone(value)
        elif key == "website":
            clean[key] = _url(value, key)
        elif key in ("booking_info", "cancellation_policy"):
            clean[key] = _text(value, key, 4000)
        elif key == "video_link_template":
            clean[key] = _video_template(value)
        elif key == "accepts_pool":
            clean[key] = bool(value)
        else:
            raise TypeError(f"unknown practice field {key!r}")
    for key, value in clean.items():
        setattr(practice, key, value)
    if "postcode" in clean:
        # The project-wide fallback: exact code, else its delivery area, else unknown (NULL).
        location = geo.locate(session, clean["postcode"])
        practice.lat, practice.lon = location.lat, location.lon


def can_edit_practice(session: Session, actor: User | None, practice: Practice) -> bool:
    if actor is not None and actor.role == Role.ADMIN:
        return True
    therapist = get_active_therapist(session, actor)
    return therapist is not None and therapist.practice_id == practice.id


def update_practice_profile(
    session: Session, now: dt.datetime, actor: User, practice: Practice, **fields
) -> Practice:
    """Update the practice profile (a therapist of the practice, or an admin).

    Fields left out (or None) stay as they are. A given postcode sets the coordinates with
    ``geo.locate`` (exact code, else its area), or clears them when nothing is known (the
    pool then needs a known one).
    """
    if not can_edit_practice(session, actor, practice):
        raise NotAllowed(N_("Sie dürfen diese Praxis nicht bearbeiten."))
    unknown = set(fields) - set(_PRACTICE_FIELDS)
    if unknown:
        raise TypeError(f"unknown practice fields {sorted(unknown)}")
    _apply_practice_fields(session, practice, **fields)
    session.flush()
    audit.record(session, now, "practice.profile_updated", actor, practice_id=practice.id)
    return practice


def update_therapist_profile(
    session: Session,
    now: dt.datetime,
    actor: User,
    therapist: Therapist,
    *,
    title: str | None = None,
    gender: str | None = None,
    methods=None,
    specialties=None,
    exclusions=None,
    populations=None,
    languages=None,
    insurances=None,
    offers_in_person: bool | None = None,
    offers_video: bool | None = None,
    offers_group: bool | None = None,
    session_minutes: int | None = None,
    buffer_minutes: int | None = None,
    switch_buffer_minutes: int | None = None,
) -> Therapist:
    """Update the therapist's own profile (or an admin does). None leaves a field unchanged.

    Rules: session 25-120 minutes, buffers 0-60, at least one of in person / video,
    catalogue codes only, no problem area both a specialty and an exclusion, at least one
    language, population and insurance.
    """
    if actor is None or (actor.role != Role.ADMIN and actor.id != therapist.user_id):
        raise NotAllowed(N_("Sie dürfen dieses Profil nicht bearbeiten."))
    new = {
        "title": therapist.title if title is None else _text(title, "title", 60),
        "gender": therapist.gender if gender is None else _gender(gender),
        "methods_mask": therapist.methods_mask
        if methods is None
        else _mask(METHODS, methods, "methods"),
        "specialties_mask": (
            therapist.specialties_mask
            if specialties is None
            else _mask(PROBLEM_AREAS, specialties, "specialties")
        ),
        "exclusions_mask": (
            therapist.exclusions_mask
            if exclusions is None
            else _mask(PROBLEM_AREAS, exclusions, "exclusions")
        ),
        "populations_mask": (
            therapist.populations_mask
            if populations is None
            else _mask(POPULATIONS, populations, "populations")
        ),
        "languages_mask": therapist.languages_mask
        if languages is None
        else _mask(LANGUAGES, languages, "languages"),
        "insurances_mask": (
            therapist.insurances_mask
            if insurances is None
            else _mask(INSURANCES, insurances, "insurances")
        ),
        "offers_in_person": therapist.offers_in_person
        if offers_in_person is None
        else bool(offers_in_person),
        "offers_video": therapist.offers_video if offers_video is None else bool(offers_video),
        "offers_group": therapist.offers_group if offers_group is None else bool(offers_group),
        "session_minutes": (
            therapist.session_minutes
            if session_minutes is None
            else _minutes(session_minutes, SESSION_MINUTES, "session_minutes")
        ),
        "buffer_minutes": (
            therapist.buffer_minutes
            if buffer_minutes is None
            else _minutes(buffer_minutes, BUFFER_MINUTES, "buffer_minutes")
        ),
        "switch_buffer_minutes": (
            therapist.switch_buffer_minutes
            if switch_buffer_minutes is None
            else _minutes(switch_buffer_minutes, BUFFER_MINUTES, "switch_buffer_minutes")
        ),
    }
    if new["specialties_mask"] & new["exclusions_mask"]:
        raise InvalidInput(
            N_("Ein Bereich kann nicht zugleich Schwerpunkt und Ausschluss sein."), "exclusions"
        )
    if not (new["offers_in_person"] or new["offers_video"]):
        raise InvalidInput(N_("Bitte Präsenz, Video oder beides anbieten."), "offers_in_person")
    if not new["languages_mask"]:
        raise InvalidInput(N_("Bitte mindestens eine Sprache wählen."), "languages")
    if not new["populations_mask"]:
        raise InvalidInput(N_("Bitte mindestens eine Zielgruppe wählen."), "populations")
    if not new["insurances_mask"]:
        raise InvalidInput(N_("Bitte mindestens eine Versicherungsart wählen."), "insurances")
    for key, value in new.items():
        setattr(therapist, key, value)
    session.flush()
    audit.record(
        session,
        now,
        "therapist.profile_updated",
        actor,
        subject_user_id=therapist.user_id,
        practice_id=therapist.practice_id,
    )
    return therapist
