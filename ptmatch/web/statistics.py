"""The statistics pages shared by the admin (region) and the practice (own practice): the
period picker, the figures the actor may see (``access.stats_figures``, small counts
suppressed where ``access`` says so), the four charts with their tables, and CSV downloads.
The monthly report renders the same ``Dashboard``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from flask import Response
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from wtforms import DateField
from wtforms.validators import Optional

from ptmatch.domain import access, stats
from ptmatch.domain.stats import Period, Scope
from ptmatch.models import SlotKind, User
from ptmatch.web.charts import Chart, format_value
from ptmatch.web.forms import BaseForm

DEFAULT_WEEKS = 8
MAX_DAYS = 731

# (key, label, kind): kind "pct" is a share, anything else a number
SUMMARY = [
    ("slots_posted", _l("Termine gemeldet"), "n"),
    ("slots_filled_before_start", _l("Vor Beginn besetzt"), "n"),
    ("slots_filled_before_deadline", _l("Vor Angebotsschluss besetzt"), "n"),
    ("slots_unfilled", _l("Nicht besetzt"), "n"),
    ("slots_cancelled", _l("Abgesagt"), "n"),
    ("slots_cancelled_after_booking", _l("Davon nach einer Buchung abgesagt"), "n"),
    ("fill_rate_before_start", _l("Besetzungsquote vor Beginn"), "pct"),
    ("hours_to_booking_median", _l("Stunden von Meldung bis Buchung (Median)"), "n"),
    ("hours_to_booking_p90", _l("Stunden von Meldung bis Buchung (90. Perzentil)"), "n"),
    ("offers_sent", _l("Angebote verschickt"), "n"),
    ("offers_per_booking", _l("Angebote je Buchung"), "n"),
    ("share_offers_accepted", _l("Angebote angenommen"), "pct"),
    ("share_offers_declined", _l("Angebote abgelehnt"), "pct"),
    ("share_offers_expired", _l("Angebote abgelaufen"), "pct"),
    ("share_offers_taken", _l("Angebote schon vergeben"), "pct"),
    ("attended", _l("Erschienen"), "n"),
    ("no_show", _l("Nicht erschienen"), "n"),
    ("attendance_rate", _l("Wahrgenommene Termine"), "pct"),
    ("patients_first_offer", _l("Patient:innen mit erstem Angebot"), "n"),
    ("days_to_first_offer_median", _l("Tage bis zum ersten Angebot (Median)"), "n"),
    ("days_to_first_offer_p90", _l("Tage bis zum ersten Angebot (90. Perzentil)"), "n"),
    ("share_first_offer_within_4_weeks", _l("Erstes Angebot binnen 4 Wochen"), "pct"),
    ("patients_first_appointment", _l("Patient:innen mit erstem Termin"), "n"),
    ("days_to_first_appointment_median", _l("Tage bis zum ersten Termin (Median)"), "n"),
    ("days_to_first_appointment_p90", _l("Tage bis zum ersten Termin (90. Perzentil)"), "n"),
    ("share_first_appointment_within_4_weeks", _l("Erster Termin binnen 4 Wochen"), "pct"),
    ("entries_active", _l("Wartelisteneinträge aktiv"), "n"),
    ("entries_paused", _l("Wartelisteneinträge pausiert"), "n"),
    ("entries_booked", _l("Wartelisteneinträge gebucht"), "n"),
    ("entries_purged", _l("Wartelisteneinträge gelöscht (keine Rückmeldung)"), "n"),
    ("checkins_sent", _l("Nachfragen „Noch suchend?“ verschickt"), "n"),
    ("checkins_confirmed", _l("Nachfragen bestätigt"), "n"),
    ("checkins_paused_unanswered", _l("Pausiert mangels Antwort"), "n"),
    ("places_total", _l("Plätze im Zeitraum"), "n"),
    ("places_per_year", _l("Plätze aufs Jahr gerechnet"), "n"),
]
URGENCY_ROWS = [
    ("patients_first_appointment", _l("Patient:innen mit erstem Termin")),
    ("days_to_first_appointment_median", _l("Tage bis zum ersten Termin (Median)")),
    ("share_first_appointment_within_4_weeks", _l("Erster Termin binnen 4 Wochen")),
]
GROUP_SEAT = _l("Gruppenplatz")
WEEKS = _l("Wo.")  # weeks, after a bar's range


class PeriodForm(BaseForm):
    class Meta:
        csrf = False

    von = DateField(_l("Von"), validators=[Optional()])
    bis = DateField(_l("Bis"), validators=[Optional()])


def default_period(today: dt.date) -> Period:
    """The last eight weeks, ending today."""
    return Period.days(today - dt.timedelta(weeks=DEFAULT_WEEKS) + dt.timedelta(days=1), today)


def period_from(form: PeriodForm, today: dt.date) -> Period:
    """The period the form asks for; on bad input the field gets a message and the default
    is shown (never a 500)."""
    valid = form.validate()
    first, last = form.von.data, form.bis.data
    fallback = default_period(today)
    if not valid or (first is None and last is None):
        return fallback
    first = first or fallback.first_day
    last = last or today
    if last < first:
        form.bis.errors = [*form.bis.errors, _l("„Bis“ liegt vor „Von“.")]
        return fallback
    if (last - first).days > MAX_DAYS:
        form.bis.errors = [*form.bis.errors, _l("Höchstens zwei Jahre auf einmal.")]
        return fallback
    return Period.days(first, last)


@dataclass
class Dashboard:
    period: Period
    previous: Period
    scope: Scope
    figures: dict
    before: dict
    suppressed: bool
    summary: list[tuple[str, str, str]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    def chart(self, key: str) -> Chart | None:
        return next((c for c in self.charts if c.key == key), None)


def build(
    session: Session, actor: User | None, now: dt.datetime, period: Period, scope: Scope
) -> Dashboard | None:
    """Everything a statistics page shows, or None when the actor may see nothing here."""
    figures_allowed = access.stats_figures(session, actor, scope.practice_id, scope.therapist_id)
    if not figures_allowed:
        return None
    suppressed = access.stats_suppresses_small_counts(session, actor, scope.practice_id)
    previous = period.previous()
    now_figures = stats.compute(session, now, period, scope, figures_allowed)
    before = stats.compute(session, now, previous, scope, figures_allowed)
    if suppressed:
        now_figures, before = stats.suppress_small(now_figures), stats.suppress_small(before)
    board = Dashboard(period, previous, scope, now_figures, before, suppressed)
    for key, label, kind in SUMMARY:
        if key in now_figures:
            pct = kind == "pct"
            board.summary.append(
                (
                    str(label),
                    format_value(now_figures[key], pct),
                    format_value(before.get(key), pct),
                )
            )
    board.charts = _charts(now_figures)
    return board


def _charts(f: dict) -> list[Chart]:
    charts = []
    buckets = [f"{label} {WEEKS}" for label in stats.bucket_labels()]
    if "weekly" in f:
        weeks = f["weekly"]
        charts.append(
            Chart(
                "besetzung",
                str(_l("Besetzungsquote vor Beginn je Woche")),
                [w["week"] for w in weeks],
                [w["fill_rate"] for w in weeks],
                percent=True,
                value_header=str(_l("Besetzt vor Beginn")),
                note=str(_l("Woche der Meldung; abgesagte und noch offene Termine zählen nicht.")),
            )
        )
    if "first_appointment_histogram" in f:
        charts.append(
            Chart(
                "erster_termin",
                str(_l("Zeit von der Registrierung bis zum ersten Termin")),
                buckets,
                f["first_appointment_histogram"],
                value_header=str(_l("Patient:innen")),
            )
        )
    if "waiting_histogram" in f:
        charts.append(
            Chart(
                "wartezeit",
                str(_l("Wartezeit aktiver Wartelisteneinträge")),
                buckets,
                f["waiting_histogram"],
                value_header=str(_l("Einträge")),
            )
        )
    if "attended" in f:
        charts.append(
            Chart(
                "wahrnehmung",
                str(_l("Wahrgenommene Termine")),
                [str(_l("Erschienen")), str(_l("Nicht erschienen"))],
                [f["attended"], f["no_show"]],
                value_header=str(_l("Termine")),
            )
        )
    return charts


def places_rows(figures: dict) -> list[tuple[str, str]]:
    """Places by kind, labelled (group seats included)."""
    from ptmatch.web.templating import label

    rows = []
    for kind, count in (figures.get("places") or {}).items():
        name = str(GROUP_SEAT) if kind == "group_seat" else label(SlotKind(kind))
        rows.append((name, format_value(count)))
    return rows


def urgency_rows(figures: dict) -> list[tuple[str, str, str]]:
    if "urgent" not in figures:
        return []
    return [
        (
            str(label),
            format_value(figures["urgent"].get(key), key.startswith("share")),
            format_value(figures["not_urgent"].get(key), key.startswith("share")),
        )
        for key, label in URGENCY_ROWS
    ]


def csv_response(board: Dashboard, which: str, filename: str) -> Response | None:
    """One chart's table (or the summary with ``kennzahlen``) as CSV; None if unknown."""
    out = io.StringIO()
    writer = csv.writer(out)
    if which == "kennzahlen":
        writer.writerow(["figure", "period", "previous_period"])
        writer.writerows(board.summary)
    else:
        chart = board.chart(which)
        if chart is None:
            return None
        writer.writerow(["label", "value"])
        writer.writerows(chart.rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}-{which}.csv"},
    )


CSV_NAMES = ("kennzahlen", "besetzung", "erster_termin", "wartezeit", "wahrnehmung")
