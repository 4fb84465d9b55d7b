"""The words (and badge colours) for every state the pages show: one table, one wording.

Each member of each status enum has one German msgid, marked with ``N_`` for extraction and
translated where it is shown, and one Bootstrap colour for its badge. Templates never spell
a state: they write ``{{ slot.status|label }}`` and ``{{ slot.status|badge }}`` (or the
``status_badge`` macro of ``_macros.html``); the filters live in ``web/templating.py``.
Slot kinds and modalities are here too: pages, forms, clash messages and calendars name
them alike (``msgid`` for text built outside a template).

A test checks that every member of every enum in ``ENUMS`` has a label and that no template
keeps a table of its own. A new state means a new line here (and its English in the .po).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ptmatch.catalog import N_
from ptmatch.models import (
    BookingStatus,
    CallKind,
    CallOutcome,
    CallStatus,
    CareStage,
    DeliveryStatus,
    EnrollmentStatus,
    EntryStatus,
    GroupStatus,
    Modality,
    OfferStatus,
    OutboxStatus,
    PatientStatus,
    RemovalReason,
    SlotKind,
    SlotStatus,
)


@dataclass(frozen=True)
class Label:
    text: str  # German msgid, translated at display
    badge: str = "secondary"  # Bootstrap colour: text-bg-<badge>


# Keyed by enum class first: StrEnum members of different enums with the same value
# (SlotStatus.BOOKED, PatientStatus.BOOKED) are equal and hash alike.
LABELS: dict[type[enum.Enum], dict[enum.Enum, Label]] = {
    SlotStatus: {
        SlotStatus.OFFERING: Label(N_("wird angeboten"), "primary"),
        SlotStatus.BOOKED: Label(N_("gebucht"), "success"),
        SlotStatus.UNFILLED: Label(N_("unbesetzt"), "warning"),
        SlotStatus.CANCELLED: Label(N_("abgesagt")),
    },
    OfferStatus: {
        OfferStatus.PENDING: Label(N_("offen"), "primary"),
        OfferStatus.ACCEPTED: Label(N_("angenommen"), "success"),
        OfferStatus.DECLINED: Label(N_("abgelehnt")),
        OfferStatus.TAKEN: Label(N_("anderweitig vergeben")),
        OfferStatus.EXPIRED: Label(N_("abgelaufen")),
        OfferStatus.WITHDRAWN: Label(N_("zurückgezogen")),
    },
    BookingStatus: {
        BookingStatus.CONFIRMED: Label(N_("bestätigt"), "success"),
        BookingStatus.ATTENDED: Label(N_("wahrgenommen"), "primary"),
        BookingStatus.NO_SHOW: Label(N_("nicht wahrgenommen"), "warning"),
        BookingStatus.CANCELLED: Label(N_("abgesagt")),
        BookingStatus.RELEASED: Label(N_("abgeschlossen („passt nicht“)")),
    },
    PatientStatus: {
        PatientStatus.ACTIVE: Label(N_("aktiv"), "success"),
        PatientStatus.PAUSED: Label(N_("pausiert")),
        PatientStatus.BOOKED: Label(N_("gebucht"), "primary"),
        PatientStatus.INACTIVE: Label(N_("inaktiv")),
        PatientStatus.DELETED: Label(N_("gelöscht"), "dark"),
    },
    EntryStatus: {
        EntryStatus.ACTIVE: Label(N_("aktiv"), "success"),
        EntryStatus.REMOVED: Label(N_("ausgetragen")),
    },
    RemovalReason: {
        RemovalReason.BOOKED_ELSEWHERE: Label(N_("wegen einer Buchung beendet")),
        RemovalReason.LEFT: Label(N_("selbst abgemeldet")),
        RemovalReason.REMOVED_BY_PRACTICE: Label(N_("von der Praxis beendet")),
        RemovalReason.REFERRED: Label(N_("weitervermittelt")),
        RemovalReason.PURGED: Label(N_("gelöscht")),
    },
    GroupStatus: {
        GroupStatus.OPEN: Label(N_("offen"), "primary"),
        GroupStatus.CONFIRMED: Label(N_("findet statt"), "success"),
        GroupStatus.CANCELLED: Label(N_("abgesagt")),
    },
    EnrollmentStatus: {
        EnrollmentStatus.ENROLLED: Label(N_("angemeldet"), "success"),
        EnrollmentStatus.WAITLISTED: Label(N_("auf der Warteliste"), "warning"),
        EnrollmentStatus.WITHDRAWN: Label(N_("abgemeldet"), "light"),
        EnrollmentStatus.CANCELLED: Label(N_("Gruppe abgesagt")),
    },
    OutboxStatus: {
        OutboxStatus.PENDING: Label(N_("wartend")),
        OutboxStatus.SENDING: Label(N_("im Versand"), "info"),
        OutboxStatus.SENT: Label(N_("gesendet"), "success"),
        OutboxStatus.DEAD: Label(N_("unzustellbar"), "danger"),
    },
    DeliveryStatus: {
        DeliveryStatus.PENDING: Label(N_("wartend")),
        DeliveryStatus.SENDING: Label(N_("im Versand"), "info"),
        DeliveryStatus.SENT: Label(N_("gesendet"), "success"),
        DeliveryStatus.DEAD: Label(N_("unzustellbar"), "danger"),
    },
    SlotKind: {
        SlotKind.SPRECHSTUNDE: Label(N_("Sprechstunde")),
        SlotKind.PROBATORIK: Label(N_("Probatorische Sitzung")),
        SlotKind.AKUT: Label(N_("Akutbehandlung")),
        SlotKind.THERAPY_PLACE: Label(N_("Therapieplatz")),
    },
    CareStage: {
        CareStage.SPRECHSTUNDE: Label(N_("sucht eine Sprechstunde")),
        CareStage.THERAPY: Label(N_("sucht einen Therapieplatz (PTV 11)"), "info"),
        CareStage.GROUP: Label(N_("sucht eine Gruppe")),
        CareStage.ANY: Label(N_("sucht Sprechstunde, Therapieplatz oder Gruppe")),
    },
    CallKind: {
        CallKind.OFFER: Label(N_("Terminangebot anrufen"), "primary"),
        CallKind.REMINDER: Label(N_("Erinnerung an einen Termin"), "info"),
        CallKind.CHECKIN: Label(N_("Nachfrage: noch auf der Suche?")),
    },
    CallStatus: {
        CallStatus.OPEN: Label(N_("anzurufen"), "warning"),
        CallStatus.DONE: Label(N_("erledigt"), "success"),
    },
    CallOutcome: {
        CallOutcome.ACCEPTED: Label(N_("angenommen"), "success"),
        CallOutcome.DECLINED: Label(N_("abgelehnt")),
        CallOutcome.NOT_REACHED: Label(N_("nicht erreicht"), "warning"),
        CallOutcome.REACHED: Label(N_("erreicht"), "success"),
        CallOutcome.STILL_LOOKING: Label(N_("sucht weiter"), "success"),
    },
    Modality: {
        Modality.IN_PERSON: Label(N_("in Präsenz")),
        Modality.VIDEO: Label(N_("per Video")),
    },
}
ENUMS = tuple(LABELS)


def label_of(value: object) -> Label | None:
    """The label of an enum member of ``ENUMS``; None for anything else (a plain string too)."""
    table = LABELS.get(type(value))
    return table.get(value) if table is not None else None


def msgid(value: enum.Enum) -> str:
    """The German msgid of a member of ``ENUMS``, untranslated (KeyError for anything else)."""
    return LABELS[type(value)][value].text
