"""State labels: one table (ptmatch/labels.py), one wording per state, on every page.

Every member of every status enum has a label and a badge colour; no template keeps a
wording table of its own; the filters translate; and a state reads the same on two pages.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from pathlib import Path

import pytest
from flask_babel import force_locale

import ptmatch.models as models
from ptmatch import labels
from ptmatch.models import OutboxStatus, PatientStatus, SlotStatus
from ptmatch.web.templating import badge, label
from tests.conftest import NOW
from tests.factories import make_secretary, make_slot, make_therapist

TEMPLATES = Path(labels.__file__).resolve().parent / "templates"
BADGES = {"primary", "secondary", "success", "danger", "warning", "info", "light", "dark"}
# Reviewed exceptions: the same words, but not a state's label.
NOT_A_LABEL = {
    ("admin/practice_form.html", "_('aktiv')"),  # Practice.is_active, a flag
    ("admin/practice_form.html", "_('inaktiv')"),
    ("admin/practices.html", "_('aktiv')"),
    ("admin/practices.html", "_('inaktiv')"),
    ("admin/users.html", "_('aktiv')"),  # User.is_enabled
    ("groups/detail.html", "_('auf der Warteliste')"),  # a counter's caption
}
# Whole sentences per state (what happened, told to the patient), not labels.
SENTENCES = {"offers/patient_offer.html"}


def _status_enums() -> list[type[enum.Enum]]:
    return [
        v
        for name, v in vars(models).items()
        if isinstance(v, type) and issubclass(v, enum.Enum) and name.endswith("Status")
    ]


def test_every_status_enum_is_in_the_table():
    assert len(_status_enums()) >= 8
    missing = [e.__name__ for e in _status_enums() if e not in labels.ENUMS]
    assert not missing, f"add these enums to ptmatch/labels.py: {missing}"


@pytest.mark.parametrize("enum_cls", labels.ENUMS, ids=lambda e: e.__name__)
def test_every_member_has_a_label_and_a_badge(enum_cls):
    for member in enum_cls:
        entry = labels.label_of(member)
        assert entry is not None, f"{enum_cls.__name__}.{member.name} has no label"
        assert entry.text.strip() and entry.badge in BADGES, (member, entry)
    assert set(labels.LABELS[enum_cls]) == set(enum_cls)


def test_equal_values_of_different_enums_keep_their_own_words():
    assert labels.label_of(SlotStatus.BOOKED) is not labels.label_of(PatientStatus.BOOKED)
    assert labels.label_of("booked") is None


def test_filters_translate_and_colour(app):
    with app.test_request_context():
        assert label(SlotStatus.UNFILLED) == "unbesetzt"
        assert badge(OutboxStatus.DEAD) == "danger"
        assert label(None) == ""
        with force_locale("en"):
            assert label(SlotStatus.UNFILLED) == "unfilled"


def test_a_value_without_a_label_is_an_error_in_tests(app):
    with app.test_request_context(), pytest.raises(UserWarning, match="no label for 'booked'"):
        label("booked")


def _wording_tables(text: str) -> list[str]:
    """Dict keys that are state values ({'offering': _('...')}): a table of its own."""
    values = {m.value for e in labels.ENUMS for m in e}
    return [
        m.group(0) for m in re.finditer(r"""['"]([a-z_]+)['"]\s*:""", text) if m.group(1) in values
    ]


def _spelled_labels(text: str) -> list[str]:
    """A label's msgid spelled in a template: _('unbesetzt')."""
    msgids = {entry.text for table in labels.LABELS.values() for entry in table.values()}
    return [
        m.group(0)
        for m in re.finditer(r"""_\(\s*(['"])(.*?)\1\s*\)""", text)
        if m.group(2) in msgids
    ]


def test_no_template_defines_its_own_state_wording():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name, text = path.relative_to(TEMPLATES).as_posix(), path.read_text(encoding="utf-8")
        hits = ([] if name in SENTENCES else _wording_tables(text)) + _spelled_labels(text)
        found.extend(f"{name}: {hit}" for hit in hits if (name, hit) not in NOT_A_LABEL)
    assert not found, "use |label / |badge / status_badge (ptmatch/labels.py):\n" + "\n".join(found)


def test_the_checks_see_the_old_tables():
    assert _wording_tables("{{ {'offering': _('wird angeboten')}.get(s, s) }}") == ["'offering':"]
    assert _spelled_labels("{% else %}<span>{{ _('unbesetzt') }}</span>") == ["_('unbesetzt')"]


def test_an_unfilled_slot_reads_the_same_for_practice_and_secretariat(client, session, login_as):
    therapist = make_therapist(session)
    secretary = make_secretary(session, [therapist.practice])
    slot = make_slot(
        session, therapist, start_at=NOW + dt.timedelta(days=1), status=SlotStatus.UNFILLED
    )
    session.commit()
    day = (NOW + dt.timedelta(days=1)).date().isoformat()
    login_as(therapist.user)
    practice_page = client.get(f"/termine/{slot.id}").get_data(as_text=True)
    login_as(secretary)
    desk_page = client.get(f"/sekretariat/termine?tag={day}").get_data(as_text=True)
    for page in (practice_page, desk_page):
        assert "unbesetzt" in page and "nicht vergeben" not in page
    assert 'text-bg-warning">unbesetzt<' in practice_page
