"""Development-only pages (dev mailbox). Registered only when DEBUG is on."""

from flask import Blueprint

bp = Blueprint("dev", __name__)
