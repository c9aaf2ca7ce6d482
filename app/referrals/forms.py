"""The caseworker's follow-up choice after a service declined or did not answer."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms.validators import DataRequired

from app.directory.matching import match_label
from app.referrals import follow_up
from app.referrals.models import TargetStatus


class FollowUpForm(FlaskForm):
    choice = RadioField(_l("What next?"), validators=[DataRequired(message=_l("Choose what to do next."))])


def follow_up_form(referral, target, formdata=None, data: dict | None = None) -> FollowUpForm:
    """The choices offered for ``target``: each matching service not yet asked (best first),
    sending again after no answer, or closing it. One form per target on a page (a prefix).
    ``data``: the workflow's data, when the caller already loaded it for several targets."""
    choices = [(f"replace:{m.service.id}", _l("Send to %(service)s", service=match_label(m)))
               for m in follow_up.alternatives(referral, target, data)]
    if target.status == TargetStatus.no_response:
        choices.append(("resend", _l("Ask %(service)s again, with a new deadline", service=target.service.name)))
    choices.append(("close", _l("No other service: close this one")))
    kwargs = {} if formdata is None else {"formdata": formdata}
    form = FollowUpForm(prefix=f"t{target.id}", **kwargs)
    form.choice.choices = choices
    return form
