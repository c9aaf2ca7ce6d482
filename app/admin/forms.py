"""Forms for the admin pages."""

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from app.auth.models import Role
from app.auth.services import MIN_PASSWORD_LENGTH
from app.core.i18n import LANGUAGE_NAMES


def valid_email(_form, field) -> None:
    """Syntax only (no DNS look-up, so it works offline); ``.test`` addresses are allowed for demos."""
    try:
        validate_email(field.data or "", check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValidationError(_l("Enter a valid email address.")) from exc


def _language_choices(blank: bool):
    choices = [SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()]
    return ([SelectChoice("", _l("Follow the browser"))] if blank else []) + choices


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    acronym = StringField(_l("Short name"), validators=[Optional(), Length(max=20)])
    locale = SelectField(_l("Language for messages to the organisation"),
                         choices=_language_choices(False), default="en")


class UserForm(FlaskForm):
    email = EmailField(_l("Email address"), validators=[DataRequired(), valid_email, Length(max=254)])
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(_l("Role"), validators=[DataRequired()])
    organisation_id = SelectField(_l("Organisation"), coerce=int, validators=[DataRequired()])
    locale = SelectField(_l("Preferred language"), choices=_language_choices(True), default="")
    password = PasswordField(_l("Password"), validators=[Optional(), Length(max=200)],
                             description=_l("At least %(n)d characters. Leave empty to keep the current password.",
                                            n=MIN_PASSWORD_LENGTH),
                             render_kw={"autocomplete": "new-password"})
    active = BooleanField(_l("Active"), default=True)

    def __init__(self, *args, organisations=(), require_password=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [SelectChoice(r.value, r.title) for r in Role]
        self.organisation_id.choices = [SelectChoice(o.id, o.name) for o in organisations]
        self.require_password = require_password

    def validate_password(self, field):
        if self.require_password and not field.data:
            raise ValidationError(_l("A password is required for a new user."))
        if field.data and len(field.data) < MIN_PASSWORD_LENGTH:
            raise ValidationError(_l("The password must have at least %(n)d characters.",
                                     n=MIN_PASSWORD_LENGTH))
