"""Calendar: .ics downloads and the therapist's private feed. (Filled in by the notification issue.)"""

from flask import Blueprint

bp = Blueprint("calendar", __name__)
