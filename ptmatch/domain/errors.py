"""Typed errors the domain raises and the edges turn into messages or status codes."""


class DomainError(Exception):
    """Base class. `message` is a German msgid (views translate it); `field` names the form
    field the message belongs to, if any."""

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


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
        raise InvalidInput("Bitte eine Angabe aus der Liste wählen.", field) from exc
