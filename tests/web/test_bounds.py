"""Issue 16: no int or date input anywhere gives a 5xx, on SQLite and on PostgreSQL.

The route-wide walk: every rule in `app.url_map` with an int parameter gets 0, -1, 2147483648
and 9223372036854775808 in each such parameter (the others are real ids of practice X and
patient A), by GET and POST, as a role that may use the route, so that the request reaches the
lookup and not just the gate. Then every POST route gets every int form field name of every form
with those values, and every GET route the same names in the query string, plus `page` and the
dates `tag=9999-12-31` / `0001-01-01`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from wtforms import DateField, IntegerField, SelectFieldBase

import ptmatch.web
from tests.web.test_access_grid import (
    ADMIN,
    ALLOW,
    ANON,
    ENDPOINT_PARAMS,
    LITERAL_PARAMS,
    PARAMS,
    PAT_A,
    SEC_X,
    THER_X,
    Token,
    build_world,
)

BOUNDARY = ["0", "-1", "2147483648", "9223372036854775808"]
HUGE_PAGES = ["9223372036854775807", "9223372036854775808", "-9223372036854775809", "0", "-1"]
BAD_DATES = ["9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01"]
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
PREFERRED_ROLES = (THER_X, SEC_X, PAT_A, ADMIN)


def _role_for(endpoint: str) -> str:
    allowed = ALLOW.get(endpoint)
    if not isinstance(allowed, frozenset) or not allowed:
        return ANON  # token routes and NOBODY: the anonymous caller
    return next((r for r in PREFERRED_ROLES if r in allowed), sorted(allowed)[0])


def _path(rule, world: dict, bad: dict[str, str]) -> str:
    """The rule's path with `bad` values for the named int parameters, real ones elsewhere."""
    overrides = ENDPOINT_PARAMS.get(rule.endpoint, {})

    def value(match) -> str:
        converter, name = match.group(1), match.group(2)
        if name in bad:
            return bad[name]
        if name in overrides:
            key = overrides[name]
            return str(world[key] if key in world else key)
        if name in PARAMS:
            return str(world[PARAMS[name]])
        if name in LITERAL_PARAMS:
            return LITERAL_PARAMS[name]
        if converter == "any":
            first = match.group(0).split("(", 1)[1].split(",")[0]
            return first.strip(" '\")")
        pytest.fail(f"{rule.endpoint}: no value for {name}")

    return _PARAM.sub(value, rule.rule)


def _int_params(rule) -> list[str]:
    return [name for conv, name in _PARAM.findall(rule.rule) if conv == "int"]


def _int_form_fields() -> tuple[set[str], set[str]]:
    """Names of int fields (IntegerField, selects) and date fields of every form class."""
    from ptmatch.web.forms import BaseForm

    for info in pkgutil.walk_packages(ptmatch.web.__path__, "ptmatch.web."):
        if info.name.endswith(".forms"):
            importlib.import_module(info.name)
    ints, dates = set(), set()
    stack = [BaseForm]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for name in dir(cls):
            unbound = getattr(cls, name, None)
            field_class = getattr(unbound, "field_class", None)
            if field_class is None:
                continue
            if issubclass(field_class, DateField):
                dates.add(name)
            elif issubclass(field_class, IntegerField | SelectFieldBase):
                ints.add(name)
    return ints, dates


def _send(client, login_as, world, role, method, url, data=None):
    if role == ANON:
        with client.session_transaction() as sess:
            sess.clear()
    else:
        login_as(world["_actors"][role])
    if method == "GET":
        resp = client.get(url, query_string=data)
    else:
        resp = client.post(url, data=data or {})
    resp.close()
    return resp


def _server_errors(app, client, login_as, world, requests) -> list[str]:
    problems = []
    for role, method, url, data in requests:
        try:
            resp = _send(client, login_as, world, role, method, url, data)
        except Exception as exc:  # noqa: BLE001 - collect all, not just the first
            problems.append(f"{role} {method} {url} {data or ''}: raised {exc!r}")
            continue
        if resp.status_code >= 500:
            problems.append(f"{role} {method} {url} {data or ''}: {resp.status_code}")
    return problems


def test_every_int_route_with_boundary_values(app, client, session, login_as):
    world = build_world(session)
    requests, routes = [], 0
    for rule in app.url_map.iter_rules():
        names = _int_params(rule)
        if not names:
            continue
        routes += 1
        role = _role_for(rule.endpoint)
        methods = [m for m in ("GET", "POST") if m in rule.methods]
        for name in names:
            for value in BOUNDARY:
                url = _path(rule, world, {name: value})
                requests += [(role, m, url, None) for m in methods]
    assert routes >= 30, routes  # the walk found the id routes
    problems = _server_errors(app, client, login_as, world, requests)
    assert not problems, "\n".join(problems)


def test_out_of_range_ids_are_404(app, client, session, login_as):
    world = build_world(session)
    login_as(world["_actors"][THER_X])
    slot = world["slot_offering_x"]
    assert client.get(f"/termine/{slot}").status_code == 200
    for value in BOUNDARY:
        assert client.get(f"/termine/{value}").status_code == 404, value


def test_every_int_and_date_form_field_with_boundary_values(app, client, session, login_as):
    """POST routes get every int/date field name at once; GET routes get them as a query."""
    world = build_world(session)
    ints, dates = _int_form_fields()
    assert {"patients", "practice", "minutes", "patient_id"} <= ints, ints
    assert {"day", "birth_date", "start_date", "date_from"} <= dates, dates
    requests = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint):
        if rule.endpoint in ("static", "bootstrap.static", "auth.logout"):
            continue
        role = _role_for(rule.endpoint)
        url = _path(rule, world, {})
        for value, day in zip(BOUNDARY, BAD_DATES, strict=True):
            data = {name: value for name in ints} | {name: day for name in dates}
            data |= {"page": value, "tag": day}
            for method in ("GET", "POST"):
                if method in rule.methods:
                    requests.append((role, method, url, data))
    problems = _server_errors(app, client, login_as, world, requests)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ["/admin/konten", "/admin/audit", "/admin/mail/"])
def test_huge_page_numbers(app, client, session, login_as, path):
    world = build_world(session)
    login_as(world["_actors"][ADMIN])
    for page in HUGE_PAGES:
        assert client.get(path, query_string={"page": page}).status_code == 200, page


def test_practice_lists_with_huge_page_numbers(app, client, session, login_as):
    world = build_world(session)
    login_as(world["_actors"][THER_X])
    for path in ("/praxis/", "/praxis/pool"):
        for page in HUGE_PAGES:
            assert client.get(path, query_string={"page": page}).status_code == 200, page


@pytest.mark.parametrize("day", BAD_DATES)
def test_secretariat_day_out_of_range_says_so(app, client, session, login_as, day):
    world = build_world(session)
    login_as(world["_actors"][SEC_X])
    resp = client.get("/sekretariat/termine", query_string={"tag": day})
    assert resp.status_code == 200
    assert "zwischen 1900 und 2199" in resp.get_data(as_text=True)


def test_int_form_field_out_of_range_gets_a_field_message(app, client, session, login_as):
    world = build_world(session)
    login_as(world["_actors"][ADMIN])
    resp = client.get("/admin/audit", query_string={"patient_id": "2147483648"})
    assert resp.status_code == 200
    assert "Diese Zahl liegt außerhalb des gültigen Bereichs." in resp.get_data(as_text=True)


def test_manual_pick_with_huge_patient_id(app, client, session, login_as):
    world = build_world(session)
    login_as(world["_actors"][THER_X])
    slot = world["slot_offering_x"]
    for value in BOUNDARY:
        resp = client.post(f"/termine/{slot}/senden", data={"patients": value})
        assert resp.status_code in (302, 303, 400), (value, resp.status_code)


def test_token_routes_are_in_the_walk():
    assert any(isinstance(v, Token) for v in ALLOW.values())
