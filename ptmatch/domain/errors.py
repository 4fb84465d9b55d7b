"""Typed errors the domain raises and the edges turn into messages or status codes."""

from __future__ import annotations

from ptmatch.catalog import N_


class DomainError(Exception):
    """Base class. `msgid`: a German msgid marked with N_() (so extraction sees it), with
    %(name)s placeholders filled from `params`; `message`: the German text (filled in);
    `field` names the form field the message belongs to, if any. Views show `text(_)`."""

    def __init__(self, message: str = "", field: str | None = None, **params):
        text = message % params if params else message
        super().__init__(text)
        self.msgid = message
        self.message = text
        self.field = field
        self.params = params

    def text(self, gettext) -> str:
        """The message in the reader's language (`gettext`: the edge's, e.g. Flask-Babel's)."""
        return gettext(self.msgid, **self.params) if self.params else gettext(self.msgid)


class NotAllowed(DomainError):
    pass


class NotFound(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class AccountLocked(DomainError):
    pass


class LoginRestart(DomainError):
    """The pending login is gone (too many wrong codes, locked, or throttled): the password
    must be entered again."""


class SlotTaken(DomainError):
    pass


class OfferExpired(DomainError):
    pass


class OfferClosed(DomainError):
    pass


class Clash(DomainError):
    pass


def enum_value(enum_cls, value, field: str):
    """`value` as a member of `enum_cls`; a value not on the list is InvalidInput for `field`."""
    try:
        return enum_cls(value)
    except ValueError as exc:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), field) from exc


class Problems:
    """The InvalidInput of several independent checks, one `with problems:` block each, so
    that a form shows every problem in one round (the first per field). A check function
    `x_problems` returns `.found`; the function that writes passes the same check's list to
    `raise_first`, so the rules live in one place."""

    def __init__(self) -> None:
        self.found: list[InvalidInput] = []

    def __enter__(self) -> Problems:
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        if not isinstance(error, InvalidInput):
            return False
        self.add(error)
        return True

    def add(self, *errors: InvalidInput) -> None:
        for error in errors:
            if error.field is None or not self.has(error.field):
                self.found.append(error)

    def has(self, field: str) -> bool:
        return any(error.field == field for error in self.found)


def raise_first(problems: list[InvalidInput]) -> None:
    """Refuse on the first of a check's problems (a write checks with its form's function)."""
    if problems:
        raise problems[0]
