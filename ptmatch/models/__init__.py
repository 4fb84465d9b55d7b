"""All models, imported here so metadata is complete for Alembic and create_all."""

from ptmatch.models.api import (
    ApiIdempotency,
    ApiKey,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from ptmatch.models.audit import AuditEvent
from ptmatch.models.bookings import Booking, BookingStatus
from ptmatch.models.calls import CallKind, CallOutcome, CallStatus, CallTask
from ptmatch.models.groups import EnrollmentStatus, GroupEnrollment, GroupProgram, GroupStatus
from ptmatch.models.offers import Offer, OfferStatus
from ptmatch.models.ops import SchedulerBeat
from ptmatch.models.outbox import OutboxChannel, OutboxMessage, OutboxStatus
from ptmatch.models.patients import (
    Availability,
    CallNote,
    CareStage,
    ClinicalNote,
    Patient,
    PatientClinical,
    PatientStatus,
    Preference,
    RegisteredVia,
)
from ptmatch.models.postcodes import Postcode
from ptmatch.models.practices import (
    CalendarBlock,
    Practice,
    Room,
    SecretariatAssignment,
    Therapist,
)
from ptmatch.models.slots import Modality, OfferMode, Slot, SlotKind, SlotStatus
from ptmatch.models.throttle import LoginThrottle, RateCounter, ResetRequest
from ptmatch.models.users import STAFF_ROLES, RecoveryCode, Role, TokenPurpose, User, UserToken
from ptmatch.models.waitlist import EntryStatus, RemovalReason, WaitlistEntry

__all__ = [
    "ApiIdempotency",
    "ApiKey",
    "DeliveryStatus",
    "WebhookDelivery",
    "WebhookEndpoint",
    "AuditEvent",
    "Availability",
    "Booking",
    "BookingStatus",
    "CalendarBlock",
    "CallKind",
    "CallNote",
    "CallOutcome",
    "CallStatus",
    "CallTask",
    "CareStage",
    "ClinicalNote",
    "EnrollmentStatus",
    "EntryStatus",
    "GroupEnrollment",
    "GroupProgram",
    "GroupStatus",
    "Modality",
    "Offer",
    "OfferMode",
    "OfferStatus",
    "OutboxMessage",
    "OutboxStatus",
    "OutboxChannel",
    "Patient",
    "PatientClinical",
    "PatientStatus",
    "Postcode",
    "Practice",
    "LoginThrottle",
    "Preference",
    "RateCounter",
    "RecoveryCode",
    "RegisteredVia",
    "RemovalReason",
    "Room",
    "ResetRequest",
    "Role",
    "STAFF_ROLES",
    "SchedulerBeat",
    "SecretariatAssignment",
    "Slot",
    "SlotKind",
    "SlotStatus",
    "Therapist",
    "TokenPurpose",
    "User",
    "UserToken",
    "WaitlistEntry",
]
