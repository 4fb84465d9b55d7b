"""The business logic. Plain functions taking (session, actor, now, ...); never imports flask.

Domain code flushes; the request or the job commits.
"""
