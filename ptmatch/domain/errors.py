"""Typed errors the domain raises and the edges turn into messages or status codes."""

from ptmatch.catalog import N_


class DomainError(Exception):
    """Base class. `message` is a German msgid marked with N_() (so extraction sees it and the
    views translate it), with %(name)s placeholders filled from `params`; `field` names the
    form field the message belongs to, if any. `str(err)` is the German text."""

    def __init__(self, message: str = "", field: str | None = None, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.field = field
        self.params = params

    @property
    def msgid(self) -> str:
        return self.message

    def text(self, gettext) -> str:
        """The message in the reader's language (`gettext`: the edge's, e.g. Flask-Babel's)."""
        return gettext(self.message, **self.params) if self.params else gettext(self.message)


class NotAllowed(DomainError):
    pass


class NotFound(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class AccountLocked(DomainError):
    pass


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
