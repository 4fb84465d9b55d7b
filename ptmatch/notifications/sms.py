"""Optional SMS to patients who gave a mobile number and chose it ("Angebote auch per SMS").

An SMS is an outbox row like a mail (channel ``sms``), written in the transaction that causes
it and delivered by the same sender job with the same retries (``delivery``), through the
SMS sender of the settings (``SMS_SENDER``: none / file / http). Only offers, group offers,
appointment reminders and still-looking check-ins go by SMS, in addition to the mail, or for
a phone-only patient (no account) instead of it, beside the secretariat's call.

The content rule of the mails holds: one generic line and a link, no name, no practice, no
date, nothing clinical (the canary test reads every SMS).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch.catalog import N_
from ptmatch.db import settings_of
from ptmatch.models import OutboxChannel, OutboxMessage, Patient
from ptmatch.notifications import outbox

# The kinds that also go by SMS, each with its one line (German msgids).
LINES: dict[str, str] = {
    "offer": N_("ptmatch: Sie haben ein neues Terminangebot. Bitte antworten Sie rechtzeitig:"),
    "group_offer": N_(
        "ptmatch: Ein Angebot für einen Gruppenplatz. Bitte antworten Sie rechtzeitig:"
    ),
    "reminder": N_("ptmatch: Erinnerung an Ihren Termin. Einzelheiten:"),
    "checkin": N_("ptmatch: Suchen Sie noch einen Therapieplatz? Bitte bestätigen Sie hier:"),
}


def enabled(session: Session) -> bool:
    return settings_of(session).SMS_SENDER != "none"


def render(kind: str, locale: str, link: str) -> str:
    """The whole text of an SMS: its line and the absolute link."""
    return f"{outbox.translations(locale).gettext(LINES[kind])} {link}"


def wants_sms(patient: Patient | None) -> bool:
    return bool(patient is not None and patient.sms_opt_in and patient.phone)


def enqueue_for_patient(
    session: Session,
    now: dt.datetime,
    patient: Patient,
    *,
    kind: str,
    dedupe_key: str,
    link_path: str,
) -> OutboxMessage | None:
    """Write the SMS of `kind` for `patient` if SMS is on, the kind goes by SMS and the
    patient chose it. Returns the row, or None (not wanted, or the key was used)."""
    if kind not in LINES or not wants_sms(patient) or not enabled(session):
        return None
    key = f"sms:{dedupe_key}"
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
        return None
    settings = settings_of(session)
    user = patient.user if patient.user_id else None
    locale = (user.locale if user is not None else None) or "de"
    return outbox.insert(
        session,
        now,
        channel=OutboxChannel.SMS,
        dedupe_key=key,
        kind=kind,
        user_id=patient.user_id,
        to_addr=patient.phone,
        locale=locale,
        subject="",
        body_text=render(kind, locale, outbox.absolute_link(settings.BASE_URL, link_path)),
        body_html="",
        message_id=f"<sms-{secrets.token_hex(16)}@{settings.mail_domain}>",
    )
