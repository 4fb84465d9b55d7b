"""Unicode hygiene for what people type (issue 16): passwords, second-factor codes, addresses.

- Passwords are compared in NFC, so "é" typed as one code point or as "e" + a combining accent
  is the same password.
- A second-factor code may arrive in full-width, Arabic-Indic or superscript digits (phones,
  IMEs); it is turned into ASCII digits, and anything else is refused with a message.
- Addresses get a UTS #39 skeleton: two addresses with the same skeleton look alike ("а" in
  Cyrillic and "a" in Latin), so a second one is refused at registration. The confusables data
  is the Unicode table as shipped by the confusable_homoglyphs package (kept in step with
  Unicode releases); the skeleton itself is built here, as UTS #39 defines it:
  NFD, map every character to its prototype, NFD again.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import unicodedata

from ptmatch.catalog import N_
from ptmatch.domain.errors import InvalidInput

_MARKS = "\u200e\u200f"  # the data wraps right-to-left characters in direction marks
_RECOVERY = re.compile(r"^[0-9a-f]{5}-?[0-9a-f]{5}$")
MSG_CODE = N_("Bitte den 6-stelligen Code aus der App oder einen Wiederherstellungscode eingeben.")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text or "")


def password_candidates(password: str) -> list[str]:
    """Spellings to try on login: NFC first (how passwords are hashed now), then the password
    as typed and its NFD form, which is how a hash from before NFC may have been made."""
    seen: list[str] = []
    for form in (nfc(password), password, unicodedata.normalize("NFD", password or "")):
        if form not in seen:
            seen.append(form)
    return seen


def normalise_code(raw: str) -> tuple[str, str]:
    """("totp", "123456") or ("recovery", "abcde-12345"); InvalidInput for anything else.

    Digits of any script that Unicode gives a decimal value (full-width, Arabic-Indic, ...) and
    compatibility digits (superscripts) become ASCII; spaces are dropped."""
    text = unicodedata.normalize("NFKC", raw or "")
    out = []
    for ch in text:
        if ch.isspace():
            continue
        if ch.isascii():
            out.append(ch.lower())
            continue
        value = unicodedata.decimal(ch, None)
        if value is None:
            raise InvalidInput(MSG_CODE, "code")
        out.append(str(value))
    code = "".join(out)
    if len(code) == 6 and code.isascii() and code.isdigit():
        return "totp", code
    if _RECOVERY.match(code):
        return "recovery", code
    raise InvalidInput(MSG_CODE, "code")


@functools.cache
def _prototypes() -> dict[str, str]:
    """Character -> prototype, from the confusables table (both directions are listed there:
    a source names its one prototype, a prototype names all its sources)."""
    raw = json.loads(
        importlib.resources.files("confusable_homoglyphs")
        .joinpath("confusables.json")
        .read_text(encoding="utf-8")
    )
    table = {k: [e["c"].strip(_MARKS) for e in v] for k, v in raw.items()}
    mapping: dict[str, str] = {}
    for char, targets in table.items():
        if len(char) != 1 or len(targets) != 1:
            continue  # a prototype (it names several sources) maps to itself
        target = targets[0]
        if len(target) == 1 and table.get(target) == [char]:
            target = min(char, target)  # a pair naming only each other: either can stand for both
        if target != char:
            mapping[char] = target
    return mapping


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of `text`, after NFKC and case folding (addresses are kept
    lower-case, and compatibility forms such as full-width letters look alike too)."""
    table = _prototypes()
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    return unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in decomposed))
