"""The link builders (ptmatch.links) against the app's routes.

Every public function of the module is called with sample arguments, and its path must be
a GET route whose parameters are exactly the builder's arguments and which url_for builds
back to the same path. A renamed route, a renamed URL parameter or a new builder without a
route fails here. And no module that writes mails spells a path of its own.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from flask import url_for
from werkzeug.exceptions import HTTPException

from ptmatch import links

# A sample value per builder parameter name (a new parameter name needs one here).
SAMPLES = {
    "token": "tok_" + "A" * 40,
    "booking_id": 7,
    "slot_id": 8,
    "group_id": 9,
    "month": "2026-11",
}

PACKAGE = Path(links.__file__).resolve().parent
# Where paths used to be spelled out: code that writes mails without a request.
NO_PATHS_IN = ("domain", "notifications", "scheduler")


def _builders() -> list[str]:
    return sorted(
        name
        for name, value in vars(links).items()
        if inspect.isfunction(value)
        and not name.startswith("_")
        and value.__module__ == links.__name__
    )


def test_the_module_has_builders():
    assert len(_builders()) >= 10, _builders()


@pytest.mark.parametrize("name", _builders())
def test_every_link_resolves_to_a_get_route(app, name):
    builder = getattr(links, name)
    params = list(inspect.signature(builder).parameters)
    missing = [p for p in params if p not in SAMPLES]
    assert not missing, f"links.{name}: add a sample for {missing} to SAMPLES in {__file__}"
    args = {p: SAMPLES[p] for p in params}
    path = builder(**args)

    try:
        endpoint, values = app.url_map.bind("ptmatch.test").match(path, method="GET")
    except HTTPException as exc:  # NotFound, MethodNotAllowed, a trailing-slash redirect
        pytest.fail(f"links.{name}() gives {path}, which is no GET route: {exc!r}")
    assert endpoint not in ("static", "bootstrap.static"), path
    assert values == args, f"links.{name}: {path} matched {endpoint} with {values}"
    with app.test_request_context():
        assert url_for(endpoint, **values) == path


def _string_paths(path: Path) -> list[str]:
    """String constants that look like a URL path ("/x..."), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = node.body[0] if node.body else None
            if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
                docstrings.add(id(doc.value))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and len(node.value) > 1
            and node.value[0] == "/"
            and node.value[1].isalpha()
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    return found


def test_no_mail_writer_spells_a_path():
    found = []
    for folder in NO_PATHS_IN:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            found.extend(_string_paths(path))
    assert not found, "use a builder of ptmatch.links instead:\n" + "\n".join(found)
