"""Forms of the offer pages: one CSRF-protected form whose buttons say accept or decline."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import AnyOf, DataRequired, Length

from ptmatch.web.forms import BaseForm

ACCEPT, DECLINE = "accept", "decline"


class AnswerForm(BaseForm):
    """Two submit buttons named "answer" (value accept / decline) post this form."""

    answer = StringField(validators=[DataRequired(), Length(max=10), AnyOf([ACCEPT, DECLINE])])


class ConfirmForm(BaseForm):
    """A bare POST form (cancel a booking): the CSRF token is all it carries."""
