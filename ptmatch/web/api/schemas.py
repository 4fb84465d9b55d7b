"""The API's request and response shapes (pydantic). The same classes validate requests and
generate the OpenAPI document (JSON Schema 2020-12, which OpenAPI 3.1 uses as is)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ptmatch.models import BookingStatus, Modality, OfferMode, SlotKind, SlotStatus


class Body(BaseModel):
    """A JSON request body: no unknown fields, and JSON types as they are (a number is no
    date, a string no number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query parameters arrive as strings and are converted."""

    model_config = ConfigDict(extra="forbid")


class SlotIn(Body):
    """A free slot to post. The same rules as in the portal apply (time in the future and at
    most a year ahead, a modality the therapist offers, no clash with the calendar)."""

    therapist_id: int = Field(ge=1, le=2_147_483_647, description="A therapist of the practice")
    start: AwareDatetime = Field(description="Start, RFC 3339 with offset")
    minutes: int = Field(50, ge=25, le=180)
    kind: SlotKind = SlotKind.SPRECHSTUNDE
    modality: Modality = Modality.IN_PERSON
    mode: OfferMode = Field(
        OfferMode.AUTO, description="auto: offered in waves at once; manual: pick in the portal"
    )


class OfferCounts(BaseModel):
    pending: int
    declined: int
    expired: int
    taken: int
    withdrawn: int
    total: int


class BookingRef(BaseModel):
    id: int
    status: BookingStatus
    initials: str = Field(description="The patient's initials only")


class SlotOut(BaseModel):
    id: int
    therapist_id: int
    start: dt.datetime
    minutes: int
    kind: SlotKind
    modality: Modality
    mode: OfferMode
    status: SlotStatus
    offer_deadline: dt.datetime = Field(description="No offer can be answered after this")
    offers: OfferCounts
    booking: BookingRef | None
    created_at: dt.datetime


class SlotPage(BaseModel):
    items: list[SlotOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class SlotQuery(Query):
    start_from: AwareDatetime | None = Field(None, alias="from")
    start_to: AwareDatetime | None = Field(None, alias="to")
    status: SlotStatus | None = None
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=200)


class BookingQuery(Query):
    start_from: AwareDatetime | None = Field(None, alias="from")
    start_to: AwareDatetime | None = Field(None, alias="to")
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=200)


class BookingOut(BaseModel):
    id: int
    slot_id: int
    status: BookingStatus
    initials: str = Field(description="The patient's initials only")
    start: dt.datetime
    minutes: int
    created_at: dt.datetime


class BookingPage(BaseModel):
    items: list[BookingOut]
    next_cursor: str | None


class AttendanceIn(Body):
    status: Literal["attended", "no_show", "released"]


class TherapistOut(BaseModel):
    id: int
    name: str
    in_person: bool
    video: bool


class TherapistList(BaseModel):
    items: list[TherapistOut]


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] = []
