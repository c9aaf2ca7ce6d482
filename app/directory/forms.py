"""The coordinator's forms: a service entry, the CSV upload, the list filters."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.core.i18n import LANGUAGE_NAMES
from app.directory import taxonomy
from app.directory.services import E164, MAX_AGE, normalise_phone


class CheckboxesField(SelectMultipleField):
    """A multiple choice shown as a group of checkboxes (works without JavaScript)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def e164(_form, field) -> None:
    """A phone number in international E.164 form; spaces and dashes are tolerated."""
    if field.data and not E164.match(field.data):
        raise ValidationError(_l("Enter the number in international form, e.g. +584141234567."))


class ServiceForm(FlaskForm):
    organisation_id = SelectField(_l("Organisation"), coerce=int, validators=[DataRequired()])
    name = StringField(_l("Name of the service"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    service_type = SelectField(_l("Type of service"), validators=[DataRequired()])
    sectors = CheckboxesField(_l("Sectors"), validators=[DataRequired(_l("Choose at least one sector."))])
    places = CheckboxesField(_l("Places served"), validators=[DataRequired(_l("Choose at least one place."))],
                             description=_l("A region or country includes every place in it."))
    min_age = IntegerField(_l("Minimum age"), validators=[Optional(), NumberRange(0, MAX_AGE)])
    max_age = IntegerField(_l("Maximum age"), validators=[Optional(), NumberRange(0, MAX_AGE)])
    sexes = CheckboxesField(_l("Serves only"), description=_l("Leave all empty if the service serves everyone."))
    statuses = CheckboxesField(_l("Open only to"), description=_l("Leave all empty if the service serves everyone."))
    languages = CheckboxesField(_l("Languages spoken"))
    opening_hours = TextAreaField(_l("Opening hours"), validators=[Optional(), Length(max=1000)])
    accepting_referrals = BooleanField(_l("Accepting new referrals"), default=True)
    capacity = IntegerField(_l("Places free now"), validators=[Optional(), NumberRange(min=0)],
                            description=_l("Leave empty if unknown; 0 means full."))
    sms_phone = TelField(_l("Phone for referral SMS"), validators=[Optional(), e164],
                         filters=[normalise_phone], description=_l("International form, e.g. +584141234567."))
    sms_locale = SelectField(_l("Language of the SMS"), default="en")
    focal_user_ids = CheckboxesField(_l("Focal points"), coerce=int,
                                     description=_l("Provider users of the organisation who answer referrals."))

    def __init__(self, *args, organisations=(), place_choices=(), providers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation_id.choices = [(o.id, o.name) for o in organisations]
        self.service_type.choices = taxonomy.choices(taxonomy.SERVICE_TYPES)
        self.sectors.choices = taxonomy.choices(taxonomy.SECTORS)
        self.places.choices = list(place_choices)
        self.sexes.choices = taxonomy.choices(taxonomy.SEXES)
        self.statuses.choices = taxonomy.choices(taxonomy.STATUSES)
        self.languages.choices = taxonomy.choices(taxonomy.LANGUAGES)
        self.sms_locale.choices = [(code, LANGUAGE_NAMES[code]) for code in taxonomy.SMS_LOCALES]
        self.focal_user_ids.choices = [(u.id, f"{u.name} ({u.email})") for u in providers]

    def validate_max_age(self, field) -> None:
        low = self.min_age.data
        if field.data is not None and low is not None and field.data < low:
            raise ValidationError(_l("The maximum age must not be below the minimum age."))

    def service_fields(self) -> dict:
        """The submitted values as ``services.create_service`` fields (places and users as ids)."""
        return {
            "name": self.name.data, "description": self.description.data or "",
            "service_type": self.service_type.data, "sectors": self.sectors.data or [],
            "min_age": self.min_age.data, "max_age": self.max_age.data,
            "sexes": self.sexes.data or [], "statuses": self.statuses.data or [],
            "languages": self.languages.data or [], "opening_hours": self.opening_hours.data or "",
            "accepting_referrals": bool(self.accepting_referrals.data), "capacity": self.capacity.data,
            "sms_phone": self.sms_phone.data or None, "sms_locale": self.sms_locale.data,
        }


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))],
                     description=_l("The columns of the export; lists separated by semicolons."),
                     render_kw={"accept": ".csv,text/csv"})
