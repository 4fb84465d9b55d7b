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


class SlotTaken(DomainError):
    pass


class OfferExpired(DomainError):
    pass


class OfferClosed(DomainError):
    pass


class Clash(DomainError):
    pass
