"""The list of blueprints, one line each. Deny by default: each gates itself."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from ptmatch.web.admin.views import bp as admin_bp
    from ptmatch.web.api.views import bp as api_bp
    from ptmatch.web.apikeys.views import bp as apikeys_bp
    from ptmatch.web.auth.views import bp as auth_bp
    from ptmatch.web.calendar.views import bp as calendar_bp
    from ptmatch.web.groups.views import bp as groups_bp
    from ptmatch.web.groups.views import offers_bp as group_offers_bp
    from ptmatch.web.mailadmin.views import bp as mailadmin_bp
    from ptmatch.web.offers.views import bp as offers_bp
    from ptmatch.web.ops.views import bp as ops_bp
    from ptmatch.web.patient.views import bp as patient_bp
    from ptmatch.web.patient.views import link_bp as patient_link_bp
    from ptmatch.web.practice.views import bp as practice_bp
    from ptmatch.web.public.views import bp as public_bp
    from ptmatch.web.secretariat.views import bp as secretariat_bp
    from ptmatch.web.slots.views import bp as slots_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(ops_bp)  # /readyz, /metrics
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(patient_bp, url_prefix="/patient")
    app.register_blueprint(patient_link_bp)  # a practice's own link: /p/<slug>
    app.register_blueprint(practice_bp, url_prefix="/praxis")
    app.register_blueprint(secretariat_bp, url_prefix="/sekretariat")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(offers_bp)
    app.register_blueprint(slots_bp, url_prefix="/termine")
    app.register_blueprint(groups_bp, url_prefix="/praxis/gruppen")
    app.register_blueprint(group_offers_bp)  # /g/<token> and /patient/gruppen
    app.register_blueprint(mailadmin_bp, url_prefix="/admin/mail")
    app.register_blueprint(calendar_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")  # key-authenticated, no cookies
    app.register_blueprint(apikeys_bp, url_prefix="/praxis/schnittstelle")
    from ptmatch.web import csrf

    csrf.exempt(api_bp)
    settings = app.extensions["settings"]
    if settings.ENV == "development" and settings.DEBUG:  # never outside development
        from ptmatch.web.dev.views import bp as dev_bp

        app.register_blueprint(dev_bp, url_prefix="/dev")
