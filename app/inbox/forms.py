"""Forms for answering a referral and recording its outcome."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from app.inbox.services import DECLINE_REASONS, OUTCOMES


class DeclineForm(FlaskForm):
    reason = RadioField(_l("Why can't your service take this referral?"), validators=[DataRequired()],
                        choices=[SelectChoice(k, v) for k, v in DECLINE_REASONS.items()])
    note = TextAreaField(_l("Note for the caseworker (no personal details)"), validators=[Length(max=500)])


class OutcomeForm(FlaskForm):
    outcome = RadioField(_l("What happened?"), validators=[DataRequired()],
                         choices=[SelectChoice(k, v) for k, v in OUTCOMES.items()])
    note = TextAreaField(_l("Note (no personal details)"), validators=[Length(max=1000)])


class AcceptForm(FlaskForm):
    """Only the CSRF token: accepting needs no input."""
