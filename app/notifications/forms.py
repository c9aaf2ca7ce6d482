"""A user's own choice: be told by SMS too, and on which number."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, TelField
from wtforms.validators import Optional, ValidationError

from app.directory.forms import e164
from app.directory.services import normalise_phone


class SmsSettingsForm(FlaskForm):
    notify_by_sms = BooleanField(_l("Also tell me by SMS (no personal details are ever sent)"))
    phone = TelField(_l("My mobile number"), validators=[Optional(), e164], filters=[normalise_phone],
                     description=_l("International form, e.g. +48600100200."))

    def validate_phone(self, field):
        if self.notify_by_sms.data and not field.data:
            raise ValidationError(_l("Enter the number the SMS should go to."))
