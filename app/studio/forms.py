"""The studio's server-side forms (the editor itself posts JSON; see routes)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from app.studio.services import KEY_PATTERN


class NewPathwayForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)],
                        description=_l("As caseworkers will see it, e.g. \"Child protection referral\"."))
    key = StringField(_l("Key"), validators=[DataRequired(), Length(max=60),
                                             Regexp(KEY_PATTERN.pattern, message=_l(
                                                 "Use 3 to 60 lower-case letters, digits or underscores, "
                                                 "starting with a letter."))],
                      description=_l("The main process id; it cannot change later, e.g. cp_referral_east."))
    copy_from = SelectField(_l("Start from"), choices=[], validate_choice=True)


class UploadForm(FlaskForm):
    file = FileField(_l("BPMN or DMN file"), validators=[FileRequired(_l("Choose a file to upload."))],
                     description=_l("A file with the name of one of the draft's files replaces it; "
                                    "another name adds a file."))
