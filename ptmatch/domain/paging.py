"""One page of a longer list: the admin lists, the audit log, the practice's waitlist and the
regional pool all hand their views a `Page`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    items: list
    page: int  # 1-based
    per_page: int
    total: int  # rows in the whole list

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages
