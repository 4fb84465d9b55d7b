"""The business logic. Plain functions taking (session, actor, now, ...); never imports flask.

Domain code flushes; the request or the job commits.
"""

# The listener that keeps the hard filters' columns on the patient row (issue 17) must be
# registered before any session flushes.
from ptmatch.domain import match_columns as _match_columns  # noqa: E402, F401
