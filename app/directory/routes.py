"""Coordinator pages: the service list, a service's entry, CSV import/export, gaps."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.auth.models import Organisation, Role
from app.auth.permissions import roles_required
from app.directory import csv_io, services, taxonomy
from app.directory.forms import ImportForm, ServiceForm
from app.directory.models import Place, Service
from app.directory.places import all_places, get_place
from app.extensions import db

bp = Blueprint("directory", __name__, url_prefix="/directory", template_folder="templates")
coordinators = roles_required(Role.coordinator, Role.admin)

#: Query-string filters of the list (and of the export).
FILTERS = ("service_type", "sector", "place_code", "status", "organisation_id", "text")


def _filters() -> dict:
    args = request.args
    found = {name: (args.get(name) or "").strip() or None for name in FILTERS}
    found["organisation_id"] = args.get("organisation_id", type=int)
    return found


def _organisations() -> list[Organisation]:
    return list(db.session.scalars(select(Organisation).order_by(Organisation.name)))


@bp.route("/")
@coordinators
def index():
    filters = _filters()
    page = services.list_services(page=request.args.get("page", 1, type=int), **filters)
    return render_template("directory/index.html", page=page, filters=filters, taxonomy=taxonomy,
                           organisations=_organisations(), places=all_places())


def _service_or_404(service_id: int) -> Service:
    service = services.get_service(service_id)
    if service is None:
        abort(404)
    return service


def _place_choices() -> list[tuple[str, str]]:
    return [(p.code, p.label) for p in all_places()]


def _save(form: ServiceForm, service: Service | None, organisation: Organisation) -> Service | None:
    """Create or update from the valid form; None (errors on the form) if a rule fails."""
    fields = form.service_fields()
    codes = form.places.data or []
    fields["places"] = list(db.session.scalars(select(Place).where(Place.code.in_(codes))))
    try:
        if service is None:
            return services.create_service(organisation, by=current_user, **fields)
        providers = {u.id: u for u in services.organisation_providers(organisation)}
        fields["focal_users"] = [providers[i] for i in form.focal_user_ids.data or [] if i in providers]
        return services.update_service(service, by=current_user, **fields)
    except services.InvalidService as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            field = getattr(form, {"focal_users": "focal_user_ids"}.get(name, name), form.name)
            field.errors = [*field.errors, message]
        return None


@bp.route("/services/new", methods=["GET", "POST"])
@coordinators
def new_service():
    form = ServiceForm(organisations=_organisations(), place_choices=_place_choices())
    del form.focal_user_ids  # chosen among the organisation's users once the service exists
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        service = _save(form, None, organisation) if organisation else None
        if service is not None:
            db.session.commit()
            flash(_("Service added. You can now choose its focal points."), "info")
            return redirect(url_for(".edit_service", service_id=service.id))
    return render_template("directory/service_form.html", form=form, service=None), 422 if form.errors else 200


@bp.route("/services/<int:service_id>", methods=["GET", "POST"])
@coordinators
def edit_service(service_id: int):
    service = _service_or_404(service_id)
    form = ServiceForm(obj=service, organisations=[service.organisation], place_choices=_place_choices(),
                       providers=services.organisation_providers(service.organisation))
    del form.organisation_id  # a service stays with its organisation
    if not form.is_submitted():
        form.places.data = [p.code for p in service.places]
        form.focal_user_ids.data = [u.id for u in service.focal_users]
    if form.validate_on_submit() and _save(form, service, service.organisation) is not None:
        db.session.commit()
        flash(_("Service saved."), "info")
        return redirect(url_for(".index"))
    return render_template("directory/service_form.html", form=form, service=service), 422 if form.errors else 200


def _state_change(service_id: int, change, message: str):
    service = _service_or_404(service_id)
    change(service, by=current_user)
    db.session.commit()
    flash(message, "info")
    return redirect(url_for(".edit_service", service_id=service.id))


@bp.route("/services/<int:service_id>/pause", methods=["POST"])
@coordinators
def pause_service(service_id: int):
    return _state_change(service_id, services.pause_service,
                         _("Service paused: caseworkers are not offered it until you resume it."))


@bp.route("/services/<int:service_id>/resume", methods=["POST"])
@coordinators
def resume_service(service_id: int):
    return _state_change(service_id, services.resume_service, _("Service resumed."))


@bp.route("/services/<int:service_id>/verify", methods=["POST"])
@coordinators
def verify_service(service_id: int):
    return _state_change(service_id, services.verify_service, _("Marked as verified today."))


@bp.route("/import", methods=["GET", "POST"])
@coordinators
def import_csv():
    form = ImportForm()
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            summary = csv_io.import_services(form.file.data.read(csv_io.MAX_BYTES + 1), by=current_user)
        except csv_io.CsvImportError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(str(summary), "info")
            return redirect(url_for(".index"))
    status = 422 if errors or form.errors else 200
    return render_template("directory/import.html", form=form, errors=errors), status


@bp.route("/export.csv")
@coordinators
def export_csv():
    selection = db.session.scalars(services.services_query(**_filters()))
    return Response(csv_io.export_services(selection), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=directory.csv"})


@bp.route("/gaps")
@coordinators
def gaps():
    rows = services.gap_counts()
    labels = {code: (place.label if (place := get_place(code)) else code)
              for code in {row[1] for row in rows if row[1]}}
    return render_template("directory/gaps.html", rows=rows, labels=labels, taxonomy=taxonomy)
