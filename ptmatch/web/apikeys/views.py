"""Schnittstelle (practice settings): API keys and webhooks of the practice.

Managed by an approved therapist of the practice with two-factor login (`access.
api_admin_practice_id`). A new key and a new webhook secret are shown once, on the page
that answers the POST; only a hash of the key is stored.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import access, api
from ptmatch.domain.errors import DomainError
from ptmatch.models import Role
from ptmatch.web import current_settings
from ptmatch.web.admin.forms import MultiCheckboxField
from ptmatch.web.forms import BaseForm, add_domain_error
from ptmatch.web.security import current_db_user, require_roles

bp = Blueprint("apikeys", __name__)
require_roles(bp, Role.THERAPIST)

SCOPE_LABELS = {
    "slots:read": _l("Termine lesen"),
    "slots:write": _l("Termine eintragen und absagen"),
    "bookings:read": _l("Buchungen lesen (nur Initialen)"),
    "bookings:write": _l("Erscheinen eintragen"),
    "stats:read": _l("Statistik lesen"),
}


class KeyForm(BaseForm):
    name = StringField(
        _l("Name (z. B. Praxissoftware)"), validators=[InputRequired(), Length(max=80)]
    )
    scopes = MultiCheckboxField(_l("Berechtigungen"), choices=[])
    submit = SubmitField(_l("Schlüssel erstellen"))


class WebhookForm(BaseForm):
    url = StringField(_l("Adresse (https://…)"), validators=[InputRequired(), Length(max=500)])
    submit_hook = SubmitField(_l("Webhook hinzufügen"))


def _key_form() -> KeyForm:
    form = KeyForm(prefix="key")
    form.scopes.choices = [(scope, str(label)) for scope, label in SCOPE_LABELS.items()]
    return form


def _gate() -> None:
    if access.api_admin_practice_id(get_session(), current_db_user()) is None:
        abort(403)


def _page(key_form=None, hook_form=None, new_key=None, new_secret=None, status=200):
    db, user = get_session(), current_db_user()
    return (
        render_template(
            "apikeys/index.html",
            keys=api.practice_keys(db, user),
            endpoints=api.practice_endpoints(db, user),
            deliveries=api.recent_deliveries(db, user),
            key_form=key_form or _key_form(),
            hook_form=hook_form or WebhookForm(prefix="hook"),
            new_key=new_key,
            new_secret=new_secret,
            scope_labels=SCOPE_LABELS,
        ),
        status,
    )


@bp.route("/")
def index():
    _gate()
    return _page()


@bp.route("/schluessel", methods=["POST"])
def create_key():
    _gate()
    form = _key_form()
    if form.validate_on_submit():
        try:
            _key, raw = api.create_key(
                get_session(), clock.now(), current_db_user(), form.name.data, form.scopes.data
            )
        except DomainError as err:
            add_domain_error(form, err)
        else:
            return _page(new_key=raw)
    return _page(key_form=form, status=422)


@bp.route("/schluessel/<int:key_id>/widerrufen", methods=["POST"])
def revoke_key(key_id: int):
    _gate()
    try:
        api.revoke_key(get_session(), clock.now(), current_db_user(), key_id)
    except DomainError:
        abort(404)
    flash(_("Der Schlüssel ist widerrufen."), "success")
    return redirect(url_for("apikeys.index"))


@bp.route("/webhooks", methods=["POST"])
def add_webhook():
    _gate()
    form = WebhookForm(prefix="hook")
    if form.validate_on_submit():
        try:
            endpoint = api.add_endpoint(
                get_session(), clock.now(), current_db_user(), form.url.data, current_settings()
            )
        except DomainError as err:
            add_domain_error(form, err)
        else:
            return _page(new_secret=endpoint.secret)
    return _page(hook_form=form, status=422)


@bp.route("/webhooks/<int:endpoint_id>/entfernen", methods=["POST"])
def remove_webhook(endpoint_id: int):
    _gate()
    try:
        api.remove_endpoint(get_session(), clock.now(), current_db_user(), endpoint_id)
    except DomainError:
        abort(404)
    flash(_("Die Webhook-Adresse ist entfernt."), "success")
    return redirect(url_for("apikeys.index"))


@bp.route("/zustellungen/<int:delivery_id>/erneut", methods=["POST"])
def resend(delivery_id: int):
    _gate()
    try:
        api.resend_delivery(get_session(), clock.now(), current_db_user(), delivery_id)
    except DomainError as err:
        if err.__class__.__name__ == "NotFound":
            abort(404)
        flash(_(err.message), "danger")
    else:
        flash(_("Die Zustellung wird erneut versucht."), "success")
    return redirect(url_for("apikeys.index"))
