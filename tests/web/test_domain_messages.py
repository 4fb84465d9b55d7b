"""Domain error messages are translatable: every message a DomainError carries is a literal
marked with N_() (so extraction sees it and test_i18n demands its English), with %(name)s
parameters instead of formatted strings; and under English each of them, raised through a
page, reads in English."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest

from ptmatch.domain import errors, waitlist
from tests.factories import make_patient, make_practice

ROOT = Path(__file__).resolve().parents[2] / "ptmatch"
SUBCLASSES = sorted(
    {cls for cls in vars(errors).values() if isinstance(cls, type)}
    & set(errors.DomainError.__subclasses__())
    | {errors.DomainError},
    key=lambda c: c.__name__,
)
NAMES = {cls.__name__ for cls in SUBCLASSES}
HELPERS = {"_int_in": 2, "_choice": 2}  # helpers that raise with a message argument (index)


def _is_marked(node) -> bool:
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "N_":
        return len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
    if isinstance(node, ast.IfExp):
        return _is_marked(node.body) and _is_marked(node.orelse)
    return False


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text())


def _constants(tree) -> dict[str, ast.AST]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found[target.id] = node.value
    return found


def _message_args():
    """(where, node) for every message given to a DomainError or a raising helper."""
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            index = 0 if name in NAMES else HELPERS.get(name)
            if index is None or len(node.args) <= index:
                continue
            yield f"{path.relative_to(ROOT.parent)}:{node.lineno}", node.args[index], tree


def test_every_domain_message_is_marked_for_translation():
    unmarked = []
    modules = {}
    for where, arg, tree in _message_args():
        if _is_marked(arg):
            continue
        constants = modules.setdefault(id(tree), _constants(tree))
        name = arg.attr if isinstance(arg, ast.Attribute) else getattr(arg, "id", None)
        if name and name.startswith("MSG_"):
            value = constants.get(name) or _module_constant(name)
            if value is not None and _is_marked(value):
                continue
        if isinstance(arg, ast.Name) and arg.id == "message":  # a helper's parameter
            continue
        unmarked.append(f"{where}: {ast.unparse(arg)[:70]}")
    assert not unmarked, "messages without N_() (extraction never sees them):\n" + "\n".join(
        unmarked
    )


def _module_constant(name: str):
    for _path, tree in _sources():
        value = _constants(tree).get(name)
        if value is not None:
            return value
    return None


def all_messages() -> list[str]:
    """Every msgid a DomainError can carry (the literals inside N_() at the raise sites)."""
    found = set()
    for _where, arg, _tree in _message_args():
        for node in ast.walk(arg):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "N_":
                found.add(node.args[0].value)
    for _path, tree in _sources():
        for name, value in _constants(tree).items():
            if name.startswith("MSG_") and _is_marked(value):
                found.add(value.args[0].value)
    return sorted(found)


def test_the_scan_finds_the_messages():
    messages = all_messages()
    assert len(messages) > 100
    assert "Diese Postleitzahl kennen wir nicht. Bitte prüfen Sie sie." in messages
    assert "Höchstens %(num)d Zeichen." in messages


def test_params_fill_the_translated_message():
    err = errors.InvalidInput("Höchstens %(num)d Zeichen.", "name", num=7)
    assert str(err) == "Höchstens 7 Zeichen."
    english = {"Höchstens %(num)d Zeichen.": "At most {num} characters."}
    assert err.text(lambda msgid, **p: english[msgid].format(**p)) == "At most 7 characters."


@pytest.fixture
def english_patient(client, session, login_as):
    practice = make_practice(session)
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    client.post("/lang", data={"lang": "en", "next": "/"})
    return practice


@pytest.fixture
def app(settings, engine):
    """Without rate limits: the test sends one list join per message (over 150), more than a
    client may send in a minute of the frozen clock."""
    import dataclasses

    from ptmatch import create_app
    from tests.conftest import CsrfClient

    app = create_app(dataclasses.replace(settings, RATE_LIMITS_ENABLED=False))
    app.test_client_class = CsrfClient
    yield app
    app.extensions["ptmatch_engine"].dispose()


def test_every_domain_error_message_reads_in_english_through_a_page(
    client, english_patient, monkeypatch
):
    """Each message, raised by each DomainError subclass in turn, through the page that joins
    a waitlist (its view shows the error as a flash message), under English."""
    from flask_babel import force_locale, gettext

    messages = all_messages()
    german_only = []
    for i, msgid in enumerate(messages):
        cls = SUBCLASSES[i % len(SUBCLASSES)]
        params = {name: 7 for name in re.findall(r"%\((\w+)\)", msgid)}

        def boom(*args, _cls=cls, _msgid=msgid, _params=params, **kwargs):
            raise _cls(_msgid, None, **_params)

        monkeypatch.setattr(waitlist, "join_list", boom)
        page = client.post(
            f"/patient/listen/praxis/{english_patient.id}", follow_redirects=True
        ).get_data(as_text=True)
        with client.application.test_request_context(), force_locale("en"):
            english = gettext(msgid, **params) if params else gettext(msgid)
        german = msgid % params if params else msgid
        text = html.unescape(page)
        if english == german or english not in text or german in text:
            german_only.append(f"{cls.__name__}: {msgid}")
    assert len(messages) > 100 and len(SUBCLASSES) >= 9
    assert not german_only, "not in English on the page:\n" + "\n".join(german_only)
