"""One page of a longer list: the admin lists, the audit log, the practice's waitlist and the
regional pool all hand their views a `Page`.

A long filtered list need not be counted to the end: `count_at_most` stops after the cap,
and a capped page says "more than N entries" and "page x of more than y" instead (issue 17:
a common word of the intake texts matches a sixth of a 100k list, and an exact count
visited every one of those rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

COUNT_CAP = 1000  # rows a page's count visits at most (beyond the current page)


@dataclass(frozen=True)
class Page:
    items: list
    page: int  # 1-based
    per_page: int
    total: int  # rows in the whole list; with `capped`, the cap (there are more)
    capped: bool = False  # the list has more than `total` rows, how many is not counted

    @property
    def pages(self) -> int:
        """The number of pages; with `capped`, the pages known to be full (there are more)."""
        if self.capped:
            return max(1, self.total // self.per_page)
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        # A capped count reaches past the current page (`count_cap`), so more rows follow.
        return self.capped or self.page < self.pages


def count_at_most(session: Session, stmt: Select, cap: int) -> int:
    """The rows of `stmt`, counted up to `cap + 1`: more than `cap` means "more than cap"."""
    limited = stmt.limit(cap + 1).subquery()
    return session.scalar(select(func.count()).select_from(limited)) or 0


def count_cap(page: int, per_page: int) -> int:
    """The cap of a count for `page`: COUNT_CAP, or up to the end of a page further on, so
    that a capped list has the page's rows and a next page."""
    return max(COUNT_CAP, page * per_page)


def paginate(total: int, page: int, per_page: int, *, capped: bool = False) -> tuple[int, int]:
    """(page, offset): the page clamped to the list's pages (a capped list has at least
    `page`'s rows, see `count_cap`)."""
    pages = max(1, math.ceil(total / per_page))
    page = max(1, page) if capped else min(max(1, page), pages)
    return page, (page - 1) * per_page
