"""Every mail kind: a generic subject, one generic line and a button label (German msgids).

The content rule lives here: no patient name, no practice or therapist name or address,
no clinical word. A mail says what kind of thing happened, optionally when, and links to
the page that shows the rest after login or through a token.
"""

from __future__ import annotations

from dataclasses import dataclass

from ptmatch.catalog import N_


@dataclass(frozen=True)
class Kind:
    subject: str
    line: str
    button: str = N_("Öffnen")


KINDS: dict[str, Kind] = {
    "verify_email": Kind(
        N_("Bitte bestätigen Sie Ihre E-Mail-Adresse"),
        N_("Bitte bestätigen Sie Ihre E-Mail-Adresse, damit wir Ihnen Termine anbieten können."),
        N_("E-Mail-Adresse bestätigen"),
    ),
    "already_registered": Kind(
        N_("Sie haben bereits ein Konto"),
        N_(
            "Jemand wollte sich mit dieser Adresse registrieren. Sie haben bereits ein Konto; "
            "melden Sie sich an oder setzen Sie Ihr Passwort zurück."
        ),
        N_("Anmelden"),
    ),
    "set_password": Kind(
        N_("Ihr Zugang zu ptmatch"),
        N_(
            "Für Sie wurde ein Zugang angelegt. Sie können ein Passwort festlegen, müssen es aber "
            "nicht."
        ),
        N_("Passwort festlegen"),
    ),
    "password_reset": Kind(
        N_("Passwort zurücksetzen"),
        N_(
            "Mit diesem Link können Sie ein neues Passwort festlegen. Wenn Sie das nicht "
            "angefordert haben, ignorieren Sie diese E-Mail."
        ),
        N_("Neues Passwort festlegen"),
    ),
    "offer": Kind(
        N_("Sie haben ein neues Terminangebot"),
        N_("Sie haben ein neues Terminangebot. Bitte antworten Sie bis zur angegebenen Frist."),
        N_("Angebot ansehen"),
    ),
    "offer_taken": Kind(
        N_("Ein Terminangebot ist nicht mehr verfügbar"),
        N_(
            "Ein Termin, der Ihnen angeboten wurde, ist inzwischen vergeben. Sie behalten Ihren "
            "Platz auf der Warteliste."
        ),
        N_("Zur Übersicht"),
    ),
    "offer_withdrawn": Kind(
        N_("Ein Terminangebot wurde zurückgezogen"),
        N_(
            "Ein Terminangebot an Sie wurde zurückgezogen. Sie behalten Ihren Platz auf der "
            "Warteliste."
        ),
        N_("Zur Übersicht"),
    ),
    "booking_confirmed": Kind(
        N_("Ihr Termin ist gebucht"),
        N_("Ihr Termin ist gebucht. Alle Einzelheiten finden Sie nach der Anmeldung."),
        N_("Termin ansehen"),
    ),
    "booking_cancelled": Kind(
        N_("Ein Termin wurde abgesagt"),
        N_("Ein Termin wurde abgesagt. Einzelheiten finden Sie nach der Anmeldung."),
        N_("Zur Übersicht"),
    ),
    "paused_no_show": Kind(
        N_("Ihre Suche ist pausiert"),
        N_(
            "Ihre Suche ist pausiert, weil vereinbarte Termine ohne Absage nicht wahrgenommen "
            "wurden (Ausfallregel der Praxen). Sie können die Suche nach der Anmeldung wieder "
            "aufnehmen."
        ),
        N_("Zur Übersicht"),
    ),
    "stage_therapy": Kind(
        N_("Ihre Suche geht weiter: jetzt nach einem Therapieplatz"),
        N_(
            "Nach Ihrer Sprechstunde suchen wir für Sie jetzt einen Therapieplatz. "
            "Ihre Wartelisten bleiben erhalten. Bitte prüfen Sie Ihre Angaben."
        ),
        N_("Angaben prüfen"),
    ),
    "booking_released": Kind(
        N_("Ihr Termin wurde abgeschlossen"),
        N_(
            "Die Praxis hat Ihren Termin abgeschlossen. Sie können sich wieder auf Ihre "
            "Wartelisten setzen lassen."
        ),
        N_("Zur Übersicht"),
    ),
    "reminder": Kind(
        N_("Erinnerung an Ihren Termin"),
        N_("Erinnerung: Sie haben bald einen Termin."),
        N_("Termin ansehen"),
    ),
    "practice_outcome_booked": Kind(
        N_("Ein freier Termin wurde vergeben"),
        N_("Ein von Ihrer Praxis angebotener Termin wurde vergeben."),
        N_("Zur Terminliste"),
    ),
    "practice_outcome_unfilled": Kind(
        N_("Ein freier Termin blieb unbesetzt"),
        N_("Ein von Ihrer Praxis angebotener Termin konnte nicht vergeben werden."),
        N_("Zur Terminliste"),
    ),
    "booking_cancelled_practice": Kind(
        N_("Ein Termin wurde abgesagt"),
        N_("Ein gebuchter Termin Ihrer Praxis wurde abgesagt."),
        N_("Zur Terminliste"),
    ),
    "checkin": Kind(
        N_("Suchen Sie noch einen Therapieplatz?"),
        N_(
            "Bitte bestätigen Sie mit einem Klick, dass Sie weiter einen Therapieplatz suchen. "
            "Ohne Antwort pausieren wir Ihre Suche in 14 Tagen."
        ),
        N_("Ja, ich suche weiter"),
    ),
    "paused": Kind(
        N_("Ihre Suche ist pausiert"),
        N_("Ihre Suche ist pausiert. Sie erhalten keine Angebote, bis Sie sie wieder aktivieren."),
        N_("Suche reaktivieren"),
    ),
    "purged": Kind(
        N_("Ihre Daten wurden gelöscht"),
        N_(
            "Da Ihre Suche lange pausiert war, haben wir Ihre Daten gelöscht. Sie können sich "
            "jederzeit neu registrieren."
        ),
        N_("Zur Startseite"),
    ),
    "waitlist_referred": Kind(
        N_("Ihre Warteliste hat sich geändert"),
        N_(
            "Sie wurden auf eine andere Warteliste übertragen. Einzelheiten finden Sie nach der "
            "Anmeldung."
        ),
        N_("Zur Übersicht"),
    ),
    "waitlist_removed": Kind(
        N_("Ihre Warteliste hat sich geändert"),
        N_(
            "Sie stehen auf einer Warteliste nicht mehr. Einzelheiten finden Sie nach der "
            "Anmeldung."
        ),
        N_("Zur Übersicht"),
    ),
    "therapist_approved": Kind(
        N_("Ihr Zugang wurde freigeschaltet"),
        N_(
            "Ihr Zugang wurde freigeschaltet. Richten Sie bei der ersten Anmeldung die "
            "Zwei-Faktor-Anmeldung ein."
        ),
        N_("Anmelden"),
    ),
    "group_offer": Kind(
        N_("Sie haben ein Angebot für eine Gruppe"),
        N_(
            "Sie haben ein neues Angebot für einen Gruppenplatz. Bitte antworten Sie bis zur "
            "angegebenen Frist."
        ),
        N_("Angebot ansehen"),
    ),
    "group_enrolled": Kind(
        N_("Ihr Gruppenplatz ist bestätigt"),
        N_("Sie sind für eine Gruppe angemeldet. Einzelheiten finden Sie nach der Anmeldung."),
        N_("Ansehen"),
    ),
    "group_waitlisted": Kind(
        N_("Sie stehen auf der Warteliste einer Gruppe"),
        N_(
            "Die Gruppe ist voll; Sie stehen auf ihrer Warteliste und werden benachrichtigt, wenn "
            "ein Platz frei wird."
        ),
        N_("Ansehen"),
    ),
    "group_confirmed": Kind(
        N_("Ihre Gruppe findet statt"), N_("Ihre Gruppe findet wie geplant statt."), N_("Ansehen")
    ),
    "group_cancelled": Kind(
        N_("Eine Gruppe wurde abgesagt"),
        N_(
            "Eine Gruppe, für die Sie angemeldet waren, findet nicht statt. Ihre Plätze auf "
            "anderen Wartelisten bleiben erhalten."
        ),
        N_("Zur Übersicht"),
    ),
    # Issue 19: the therapist hears of the 48-hour decision (no names, only the outcome).
    "practice_group_confirmed": Kind(
        N_("Eine Gruppe findet statt"),
        N_("Eine Gruppe Ihrer Praxis hat genug Anmeldungen und findet wie geplant statt."),
        N_("Zur Gruppe"),
    ),
    "practice_group_cancelled": Kind(
        N_("Eine Gruppe findet nicht statt"),
        N_(
            "Eine Gruppe Ihrer Praxis hat die Mindestzahl nicht erreicht und findet nicht statt. "
            "Alle Angemeldeten sind benachrichtigt."
        ),
        N_("Zur Gruppe"),
    ),
    "stats_report": Kind(
        N_("Der Monatsbericht liegt bereit"),
        N_(
            "Die Statistik des vergangenen Monats liegt bereit. Die Zahlen sehen Sie nach der "
            "Anmeldung."
        ),
        N_("Statistik ansehen"),
    ),
}
