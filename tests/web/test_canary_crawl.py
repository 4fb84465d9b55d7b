"""The canary crawl: clinical fields hold a unique marker; the secretariat and the admin
follow every same-site link reachable from their navigation (and every export) and the
marker must appear on no page. A therapist of the practice sees it, so the crawl can fail."""

from __future__ import annotations

import re
from collections import deque
from html import unescape
from urllib.parse import quote, urljoin, urlsplit

import pytest

from ptmatch.domain import access
from ptmatch.models import User
from tests.conftest import NOW
from tests.web.test_access_grid import ADMIN, CANARY, SEC_OTHER, SEC_X, THER_X, build_world

MAX_PAGES = 250
MAX_VARIANTS = 4  # query-string variants per path (day navigation, pages) worth following
HREF_RE = re.compile(r'href="([^"#]+)')
SKIP_PREFIXES = ("/static/", "/bootstrap/", "/auth/", "/lang", "/hilfe")
INTAKE_CANARY = "CANARY-INTAKE-5d1e"


def crawl(client, start_urls: list[str]) -> dict[str, str]:
    """BFS over same-site GET links from `start_urls`; returns {url: body} of every page."""
    seen: dict[str, str] = {}
    variants: dict[str, int] = {}
    queue = deque(start_urls)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        path_only = url.split("?", 1)[0]
        if url in seen or (url not in start_urls and variants.get(path_only, 0) >= MAX_VARIANTS):
            continue
        variants[path_only] = variants.get(path_only, 0) + 1
        resp = client.get(url)
        body = resp.get_data(as_text=True)
        resp.close()
        seen[url] = f"{resp.status_code} {resp.headers.get('Content-Disposition', '')}\n{body}"
        if resp.status_code in (301, 302, 303):
            target = urlsplit(resp.headers["Location"])
            if not target.netloc or target.netloc == "localhost":
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
            continue
        if "html" not in resp.content_type:
            continue
        for href in HREF_RE.findall(body):
            link = urlsplit(urljoin(url, unescape(href)))
            if link.scheme not in ("", "http") or (link.netloc and link.netloc != "localhost"):
                continue
            path = link.path + (f"?{link.query}" if link.query else "")
            if path.startswith(SKIP_PREFIXES) or path in seen:
                continue
            queue.append(path)
    return seen


def _offenders(pages: dict[str, str], *markers: str) -> list[str]:
    return [url for url, body in pages.items() for m in markers if m in body]


@pytest.fixture
def world(session, sessions):
    world = build_world(session)
    # Give the logs something clinical to be tempted by: a therapist views A's record.
    with sessions() as s:
        therapist = s.get(User, world["_actors"][THER_X].id)
        patient = s.get(type(world["_objects"]["patient_a"]), world["patient_a"])
        access.load_clinical(s, therapist, patient, NOW)
        s.commit()
    return world


def _record_intake(client, login_as, world):
    login_as(world["_actors"][SEC_X])
    resp = client.post(
        f"/sekretariat/anrufer/{world['patient_a']}/aufnahme",
        data={
            "problems": ["eating"],
            "description": f"Sagt: {INTAKE_CANARY}",
            "urgency_code": "CANARY-U2",
        },
    )
    assert resp.status_code == 200
    assert INTAKE_CANARY not in resp.get_data(as_text=True)


def _seeds(world, name: str) -> list[str]:
    a = world["_objects"]["patient_a"]
    return [
        "/",
        f"/sekretariat/?q={quote(a.last_name)}",
        f"/sekretariat/?q={quote(a.phone)}",
        f"/sekretariat/?q={quote(name)}",
    ]


def test_secretariat_serving_the_practice_never_sees_the_canary(client, login_as, world):
    _record_intake(client, login_as, world)
    login_as(world["_actors"][SEC_X])
    pages = crawl(client, _seeds(world, world["_objects"]["patient_a"].first_name))
    assert f"/sekretariat/anrufer/{world['patient_a']}" in pages  # the crawl reached A's card
    assert f"/sekretariat/anrufer/{world['patient_a']}/aufnahme" in pages
    assert len(pages) > 8
    assert _offenders(pages, CANARY, INTAKE_CANARY, "CANARY-U1", "CANARY-U2") == []
    assert any(url.startswith("/termine/") for url in pages)  # the slot pages were crawled too
    # Problem areas are clinical too: their labels appear only as the intake form's choices.
    others = {url: body for url, body in pages.items() if not url.endswith("/aufnahme")}
    assert _offenders(others, "Depression", "Essstörung") == []


def test_secretariat_not_serving_the_practice_never_sees_the_canary(client, login_as, world):
    login_as(world["_actors"][SEC_OTHER])
    pages = crawl(client, _seeds(world, "x"))
    assert _offenders(pages, CANARY, "CANARY-U1") == []
    assert not any(f"/anrufer/{world['patient_a']}" in url for url in pages)


def test_admin_never_sees_the_canary_incl_exports(client, login_as, world):
    _record_intake(client, login_as, world)
    login_as(world["_actors"][ADMIN])
    pages = crawl(client, ["/", f"/admin/audit?patient_id={world['patient_a']}"])
    assert any(url.startswith("/admin/audit.csv") for url in pages)  # the export was followed
    assert any(url.startswith("/admin/mail") for url in pages)
    assert _offenders(pages, CANARY, INTAKE_CANARY, "CANARY-U1", "CANARY-U2") == []


def test_the_crawl_can_find_the_canary(client, login_as, world):
    """The therapist of X does see it on A's file: the marker and the crawl work."""
    login_as(world["_actors"][THER_X])
    pages = crawl(client, ["/", f"/praxis/patient/{world['patient_a']}"])
    assert _offenders(pages, CANARY)
