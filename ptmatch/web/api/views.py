"""/api/v1: practice software posts and tracks slots with a practice's key.

Each operation is declared once with `operation(...)`: its path, scope and pydantic shapes.
That declaration registers the Flask route, validates the request, checks the key's scope
and feeds the OpenAPI document (`openapi.json`). The work itself is the domain's usual
functions, exactly as the portal calls them. Errors are RFC 9457 problem+json.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, Response, g, json, render_template, request
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import access, api, audit, offers
from ptmatch.domain.errors import Clash, DomainError, InvalidInput, NotAllowed, NotFound
from ptmatch.models import ApiKey, Booking, BookingStatus, Patient, Slot, Therapist
from ptmatch.web import current_settings
from ptmatch.web.api import schemas as s

bp = Blueprint("api", __name__)

PROBLEM = "application/problem+json"
# The domain names a field as the portal's form does; the API's name for it.
FIELD_NAMES = {"start_time": "start"}
PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass
class Operation:
    method: str
    path: str  # OpenAPI style: /slots/{slot_id}
    op_id: str
    scope: str
    summary: str
    view: Callable
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    links: dict = field(default_factory=dict)
    idempotent_header: bool = False


OPERATIONS: list[Operation] = []


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str = "", errors=()):
        super().__init__(title)
        self.status, self.title, self.detail, self.errors = status, title, detail, list(errors)


def problem(status: int, title: str, detail: str = "", errors=()) -> Response:
    body = s.Problem(title=title, status=status, detail=detail, errors=list(errors))
    response = Response(body.model_dump_json(), status=status, mimetype=PROBLEM)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ptmatch"'
    return response


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(
        model.model_dump_json(by_alias=True), status=status, mimetype="application/json"
    )


def _validation_errors(err: ValidationError) -> list[s.FieldError]:
    return [
        s.FieldError(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"])
        for e in err.errors(include_url=False)
    ]


def _domain_problem(err: DomainError) -> ApiError:
    params = getattr(err, "params", None) or {}
    message = _(getattr(err, "msgid", err.message), **params)
    if isinstance(err, NotFound):
        return ApiError(404, "Not Found", message)
    if isinstance(err, NotAllowed):
        return ApiError(403, "Forbidden", message)
    if isinstance(err, InvalidInput | Clash) or err.field:
        name = FIELD_NAMES.get(err.field, err.field) if err.field else "body"
        errors = [s.FieldError(field=name, message=message)]
        return ApiError(422, "Unprocessable Content", message, errors)
    return ApiError(409, "Conflict", message)


def _key() -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _sep, raw = header.partition(" ")
    key = None
    if scheme.lower() == "bearer":
        key = api.authenticate(get_session(), clock.now(), raw.strip())
    if key is None:
        raise ApiError(401, "Unauthorized", "A valid API key is required (Authorization: Bearer).")
    return key


def operation(method: str, path: str, *, scope: str, summary: str, **kwargs):
    def decorator(view):
        op = Operation(method, path, view.__name__, scope, summary, view, **kwargs)
        OPERATIONS.append(op)
        rule = PATH_PARAM.sub(r"<int:\1>", path)
        bp.add_url_rule(rule, op.op_id, _handler(op), methods=[method])
        return view

    return decorator


def _handler(op: Operation):
    def handle(**path_args):
        db, now = get_session(), clock.now()
        key = None
        try:
            key = _key()
            g.api_key_id = key.id
            if op.scope not in key.scope_set:
                raise ApiError(403, "Forbidden", f"This key lacks the scope {op.scope}.")
            args = {}
            if op.query is not None:
                try:
                    args["query"] = op.query.model_validate(request.args.to_dict())
                except ValidationError as err:
                    raise ApiError(
                        422, "Unprocessable Content", "", _validation_errors(err)
                    ) from None
            if op.body is not None:
                try:
                    args["body"] = op.body.model_validate_json(request.get_data() or b"")
                except ValidationError as err:
                    if any(e["type"] == "json_invalid" for e in err.errors()):
                        raise ApiError(400, "Bad Request", "A JSON body is required.") from None
                    raise ApiError(
                        422, "Unprocessable Content", "", _validation_errors(err)
                    ) from None
            response = op.view(db, now, key, **path_args, **args)
            status = response.status_code
        except ApiError as err:
            response, status = problem(err.status, err.title, err.detail, err.errors), err.status
        except DomainError as err:
            mapped = _domain_problem(err)
            response = problem(mapped.status, mapped.title, mapped.detail, mapped.errors)
            status = mapped.status
        if key is not None:
            _audit(db, now, key, op, status, path_args)
        return response

    handle.__name__ = op.op_id
    return handle


def _audit(db, now, key: ApiKey, op: Operation, status: int, path_args: dict) -> None:
    """Every call with a key is audited: which key, which operation, the answer. A refused
    call's own changes are rolled back first, so only the record of the call remains."""
    if status >= 400:
        db.rollback()
        db.add(key)
    audit.record(
        db,
        now,
        "api.call",
        None,
        practice_id=key.practice_id,
        api_key_id=key.id,
        operation=op.op_id,
        status=status,
        **{k: v for k, v in path_args.items() if isinstance(v, int)},
    )
    if status >= 400:
        db.commit()  # the edge commits the record of a refused call; after_request rolls back


# --- helpers ---


def _own_slot(db, key: ApiKey, slot_id: int) -> Slot:
    slot = db.get(Slot, slot_id)
    if slot is None or slot.practice_id != key.practice_id:
        raise ApiError(404, "Not Found", "No such slot.")
    return slot


def _actor(db, key: ApiKey, therapist: Therapist | None):
    actor = api.key_actor(db, key, therapist)
    if actor is None:
        raise ApiError(403, "Forbidden", "The key's practice cannot act for this therapist.")
    return actor


def slot_out(state: offers.SlotState) -> s.SlotOut:
    slot = state.slot
    booking = None
    if state.booking is not None:
        booking = s.BookingRef(**access.api_booking_view(state.booking, state.patient))
    return s.SlotOut(
        id=slot.id,
        therapist_id=slot.therapist_id,
        start=slot.start_at,
        minutes=slot.minutes,
        kind=slot.kind,
        modality=slot.modality,
        mode=slot.offer_mode,
        status=slot.status,
        offer_deadline=slot.offer_deadline_at,
        offers=s.OfferCounts(
            pending=state.pending,
            declined=state.declined,
            expired=state.expired,
            taken=state.taken,
            withdrawn=state.withdrawn,
            total=state.offered,
        ),
        booking=booking,
        created_at=slot.created_at,
    )


def _slot_response(db, now, slot: Slot, status: int = 200) -> Response:
    (state,) = offers.slot_states(db, now, [slot])
    return _json(slot_out(state), status)


def booking_out(booking: Booking, slot: Slot, patient: Patient | None) -> s.BookingOut:
    view = access.api_booking_view(booking, patient)
    return s.BookingOut(
        id=booking.id,
        slot_id=slot.id,
        status=booking.status,
        initials=view["initials"],
        start=slot.start_at,
        minutes=slot.minutes,
        created_at=booking.created_at,
    )


# --- operations ---

SLOT_LINKS = {
    "GetSlot": {"operationId": "get_slot", "parameters": {"slot_id": "$response.body#/id"}},
    "CancelSlot": {"operationId": "cancel_slot", "parameters": {"slot_id": "$response.body#/id"}},
}


@operation(
    "POST",
    "/slots",
    scope="slots:write",
    summary="Post a free slot (offered at once in auto mode)",
    body=s.SlotIn,
    response=s.SlotOut,
    status=201,
    links=SLOT_LINKS,
    idempotent_header=True,
)
def post_slot(db, now, key: ApiKey, body: s.SlotIn):
    idem = request.headers.get("Idempotency-Key")
    fingerprint = api.request_fingerprint(body.model_dump(mode="json"))
    if idem is not None:
        if not 1 <= len(idem) <= 255 or not idem.isprintable():
            raise ApiError(
                422,
                "Unprocessable Content",
                "",
                [s.FieldError(field="Idempotency-Key", message="1 to 255 printable characters")],
            )
        try:
            stored = api.replay(db, key.practice_id, idem, fingerprint)
            if (
                stored is None
                and api.claim_key(db, now, key.practice_id, idem, fingerprint) is None
            ):
                db.rollback()  # another request holds the key: read what it stored
                db.add(key)
                stored = api.replay(db, key.practice_id, idem, fingerprint)
        except api.IdempotencyConflict:
            raise ApiError(
                409, "Conflict", "This Idempotency-Key was used with another request body."
            ) from None
        if stored is not None:
            return Response(
                json.dumps(stored.response), status=stored.status_code, mimetype="application/json"
            )
    therapist = db.get(Therapist, body.therapist_id)
    if therapist is None or therapist.practice_id != key.practice_id:
        raise ApiError(
            422,
            "Unprocessable Content",
            "",
            [s.FieldError(field="therapist_id", message="No therapist of this practice.")],
        )
    slot = offers.post_slot(
        db,
        now,
        _actor(db, key, therapist),
        therapist,
        start_at=body.start,
        minutes=body.minutes,
        kind=body.kind,
        modality=body.modality,
        mode=body.mode,
        settings=current_settings(),
    )
    response = _slot_response(db, now, slot, 201)
    if idem is not None:
        row = api.replay_row(db, key.practice_id, idem)
        row.status_code, row.response = 201, json.loads(response.get_data())
    return response


@operation(
    "GET",
    "/slots",
    scope="slots:read",
    summary="The practice's slots",
    query=s.SlotQuery,
    response=s.SlotPage,
)
def list_slots(db, now, key: ApiKey, query: s.SlotQuery):
    slots, cursor = api.slot_page(
        db,
        key.practice_id,
        start_from=query.start_from,
        start_to=query.start_to,
        status=query.status,
        cursor=query.cursor,
        limit=query.limit,
    )
    items = [slot_out(state) for state in offers.slot_states(db, now, slots)]
    return _json(s.SlotPage(items=items, next_cursor=cursor))


@operation("GET", "/slots/{slot_id}", scope="slots:read", summary="One slot", response=s.SlotOut)
def get_slot(db, now, key: ApiKey, slot_id: int):
    return _slot_response(db, now, _own_slot(db, key, slot_id))


@operation(
    "DELETE",
    "/slots/{slot_id}",
    scope="slots:write",
    summary="Cancel a slot: open offers are withdrawn, a booked patient is told",
    response=s.SlotOut,
)
def cancel_slot(db, now, key: ApiKey, slot_id: int):
    slot = _own_slot(db, key, slot_id)
    offers.cancel_slot(db, now, _actor(db, key, slot.therapist), slot)
    return _slot_response(db, now, slot)


@operation(
    "POST",
    "/bookings/{booking_id}/attendance",
    scope="bookings:write",
    summary="After the appointment: attended, no-show, or released (no fit)",
    body=s.AttendanceIn,
    response=s.BookingOut,
)
def attendance(db, now, key: ApiKey, booking_id: int, body: s.AttendanceIn):
    booking = db.get(Booking, booking_id)
    slot = db.get(Slot, booking.slot_id) if booking is not None else None
    if slot is None or slot.practice_id != key.practice_id:
        raise ApiError(404, "Not Found", "No such booking.")
    actor = _actor(db, key, slot.therapist)
    if body.status == "released":
        offers.release_booking(db, now, actor, booking)
    else:
        offers.mark_booking(db, now, actor, booking, BookingStatus(body.status))
    return _json(booking_out(booking, slot, db.get(Patient, booking.patient_id)))


@operation(
    "GET",
    "/bookings",
    scope="bookings:read",
    summary="The practice's bookings by appointment time",
    query=s.BookingQuery,
    response=s.BookingPage,
)
def list_bookings(db, now, key: ApiKey, query: s.BookingQuery):
    rows, cursor = api.booking_page(
        db,
        key.practice_id,
        start_from=query.start_from,
        start_to=query.start_to,
        cursor=query.cursor,
        limit=query.limit,
    )
    items = [booking_out(booking, slot, patient) for booking, slot, patient in rows]
    return _json(s.BookingPage(items=items, next_cursor=cursor))


@operation(
    "GET",
    "/therapists",
    scope="slots:read",
    summary="The practice's therapists who may be offered slots for",
    response=s.TherapistList,
)
def list_therapists(db, now, key: ApiKey):
    items = [
        s.TherapistOut(
            id=t.id,
            name=t.user.display_name if t.user is not None else "",
            in_person=t.offers_in_person,
            video=t.offers_video,
        )
        for t in api.practice_therapists(db, key.practice_id)
    ]
    return _json(s.TherapistList(items=items))


# --- the document ---


@bp.route("/openapi.json")
def openapi_json():
    from ptmatch.web.api.openapi import document

    return Response(json.dumps(document(OPERATIONS)), mimetype="application/json")


@bp.route("/docs")
def docs():
    from ptmatch.web.api.openapi import document

    return render_template("api/docs.html", doc=document(OPERATIONS), operations=OPERATIONS)
