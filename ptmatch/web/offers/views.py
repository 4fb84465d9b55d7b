"""Offer links from mails (token pages). (Filled in by the offer issue.)"""

from flask import Blueprint

bp = Blueprint("offers", __name__)
