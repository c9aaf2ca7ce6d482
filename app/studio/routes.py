"""Studio pages: pathways, drafts, the editor's JSON endpoints, versions, test run.

Only coordinators and admins; the editor is the one page that needs JavaScript — everything
else (files, upload, checks, test run, publish, roll back) works as plain forms.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.auth.models import Role
from app.auth.permissions import roles_required
from app.extensions import db
from app.studio import services, testrun
from app.studio.forms import NewPathwayForm, UploadForm
from app.studio.strings import editor_strings
from app.workflow import services as workflow
from app.workflow.checks import problems_as_dicts

bp = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates",
               static_folder="static", static_url_path="/static")
coordinators = roles_required(Role.coordinator, Role.admin)


def _pathway(key: str):
    pathway = workflow.get_pathway(key)
    if pathway is None or not services.can_edit_pathways(current_user):
        abort(404)
    return pathway


def _draft(pathway):
    draft = services.draft_for(pathway)
    if draft is None:
        abort(404)
    return draft


def _limit_body() -> None:
    """Refuse (413) a request body far over the file size limit before reading it."""
    limit = services.max_file_bytes() * 2 + 64 * 1024
    if (request.content_length or 0) > limit:
        abort(413)
    request.max_content_length = limit  # a body without a length stops being read there


def _file_kind(name: str) -> str:
    return "dmn" if name.endswith(".dmn") else "bpmn"


@bp.route("/")
@coordinators
def index():
    return render_template("studio/index.html", rows=services.overview())


@bp.route("/new", methods=["GET", "POST"])
@coordinators
def new():
    form = NewPathwayForm()
    form.copy_from.choices = [("", _("A blank diagram"))] + [
        (p.key, _("A copy of %(title)s", title=_(p.title))) for p in workflow.published_pathways()]
    if form.validate_on_submit():
        source = workflow.get_pathway(form.copy_from.data) if form.copy_from.data else None
        try:
            draft = services.new_pathway(form.key.data, form.title.data, current_user, copy_from=source)
        except services.BadRequest as exc:
            form.key.errors = [*form.key.errors, str(exc)]
        else:
            db.session.commit()
            return redirect(url_for(".edit", key=draft.pathway.key))
    return render_template("studio/new.html", form=form), 422 if form.errors else 200


@bp.route("/<key>/")
@coordinators
def pathway(key: str):
    pathway = _pathway(key)
    draft = services.draft_for(pathway)
    return render_template("studio/pathway.html", pathway=pathway, draft=draft,
                           current=workflow.current_version(pathway),
                           changes=services.draft_changes(draft) if draft else None,
                           history=services.history(pathway))


@bp.route("/<key>/draft", methods=["POST"])
@coordinators
def start_draft(key: str):
    pathway = _pathway(key)
    number = request.form.get("version", type=int)
    version = services.get_version(pathway, number) if number else None
    if number and version is None:
        abort(404)
    if version is not None and services.draft_for(pathway) is not None:
        flash(_("Discard the current draft first: there is one draft per pathway."), "error")
        return redirect(url_for(".pathway", key=key))
    services.start_draft(pathway, current_user, version)
    db.session.commit()
    return redirect(url_for(".edit", key=key))


@bp.route("/<key>/draft/discard", methods=["POST"])
@coordinators
def discard(key: str):
    pathway = _pathway(key)
    services.discard_draft(_draft(pathway), current_user)
    db.session.commit()
    flash(_("The draft was discarded."), "info")
    return redirect(url_for(".index"))


@bp.route("/<key>/edit")
@coordinators
def edit(key: str):
    pathway = _pathway(key)
    draft = services.draft_for(pathway)
    if draft is None:
        return redirect(url_for(".pathway", key=key))
    file_name = request.args.get("file") or draft.main_file
    if file_name not in draft.files:
        abort(404)
    problems = problems_as_dicts(services.check_draft(draft).problems)
    config = {
        "file": file_name, "kind": _file_kind(file_name), "revision": draft.revision,
        "xml_url": url_for(".draft_file", key=key, name=file_name),
        "save_url": url_for(".save_file", key=key, name=file_name),
        "validate_url": url_for(".check", key=key, file=file_name),
        "csrf_token": generate_csrf(), "problems": problems, "strings": editor_strings(),
        **services.editor_choices(draft),
    }
    return render_template("studio/editor.html", pathway=pathway, draft=draft, file_name=file_name,
                           file_kind=_file_kind(file_name), problems=problems, config=config,
                           upload_form=UploadForm())


@bp.route("/<key>/draft/files/<path:name>")
@coordinators
def draft_file(key: str, name: str):
    draft = _draft(_pathway(key))
    if name not in draft.files:
        abort(404)
    return _xml(draft.files[name], name, request.args.get("download") == "1")


def _xml(text: str, name: str, download: bool) -> Response:
    response = Response(text, mimetype="application/xml")
    response.headers["X-Content-Type-Options"] = "nosniff"
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{name.rsplit("/", 1)[-1]}"'
    return response


@bp.route("/<key>/draft/files/<path:name>", methods=["POST"])
@coordinators
def save_file(key: str, name: str):
    draft = _draft(_pathway(key))
    _limit_body()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("xml"), str) \
            or not isinstance(payload.get("revision"), int):
        return jsonify(error=_("Send the file as JSON: {\"xml\": \"...\", \"revision\": n}.")), 400
    try:
        result = services.save_file(draft, name, payload["xml"], payload["revision"], current_user)
    except services.DraftConflict as conflict:
        db.session.rollback()
        return jsonify(error=_("Someone else saved this draft meanwhile. Reload to see their changes; "
                               "copy yours first if you need them."), revision=conflict.revision), 409
    except services.FileRefused as refused:
        db.session.rollback()
        return jsonify(error=_("The file was refused and not saved."),
                       problems=problems_as_dicts(refused.problems)), 400
    except services.BadRequest as exc:
        db.session.rollback()
        return jsonify(error=str(exc)), 404
    db.session.commit()
    return jsonify(saved=True, revision=draft.revision, problems=problems_as_dicts(result.problems))


@bp.route("/<key>/draft/check", methods=["POST"])
@coordinators
def check(key: str):
    draft = _draft(_pathway(key))
    _limit_body()
    payload = request.get_json(silent=True) or {}
    name = request.args.get("file") or draft.main_file
    xml = payload.get("xml") if isinstance(payload, dict) else None
    if name not in draft.files or (xml is not None and not isinstance(xml, str)):
        return jsonify(error=_("Unknown file.")), 404
    result = services.check_draft(draft, (name, xml) if xml is not None else None)
    return jsonify(problems=problems_as_dicts(result.problems))


@bp.route("/<key>/draft/upload", methods=["POST"])
@coordinators
def upload(key: str):
    pathway = _pathway(key)
    draft = _draft(pathway)
    _limit_body()
    form = UploadForm()
    if not form.validate_on_submit():
        for message in form.file.errors:
            flash(message, "error")
        return redirect(url_for(".edit", key=key))
    stream = form.file.data.stream
    data = stream.read(services.max_file_bytes() + 1)
    try:
        result = services.upload_file(draft, form.file.data.filename, data, current_user)
    except services.FileRefused as refused:
        db.session.rollback()
        for problem in refused.problems:
            flash(_("Upload refused: %(problem)s", problem=str(problem)), "error")
        return redirect(url_for(".edit", key=key))
    except services.BadRequest as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".edit", key=key))
    db.session.commit()
    flash(_("File uploaded into the draft (%(count)d problems found).", count=len(result.problems)), "info")
    return redirect(url_for(".edit", key=key, file=_uploaded_name(draft, form.file.data.filename)))


def _uploaded_name(draft, filename: str) -> str:
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return next((name for name in draft.files if name.rsplit("/", 1)[-1] == base), draft.main_file)


@bp.route("/<key>/publish", methods=["POST"])
@coordinators
def publish(key: str):
    draft = _draft(_pathway(key))
    try:
        version = services.publish_draft(draft, current_user)
    except workflow.PathwayInvalid as invalid:
        db.session.rollback()
        flash(_("Not published: %(count)d problems must be fixed first.", count=len(invalid.problems)), "error")
        return redirect(url_for(".edit", key=key))
    db.session.commit()
    flash(_("Version %(number)d is published. New referrals use it; running ones keep theirs.",
            number=version.number), "info")
    return redirect(url_for(".version", key=key, number=version.number))


@bp.route("/<key>/versions/<int:number>")
@coordinators
def version(key: str, number: int):
    pathway = _pathway(key)
    version = services.get_version(pathway, number) or abort(404)
    return render_template("studio/version.html", pathway=pathway, version=version,
                           current=workflow.current_version(pathway), changes=services.version_changes(version),
                           publisher=services.publisher(version))


@bp.route("/<key>/versions/<int:number>/files/<path:name>")
@coordinators
def version_file(key: str, number: int, name: str):
    version = services.get_version(_pathway(key), number) or abort(404)
    if name not in version.files:
        abort(404)
    return _xml(version.files[name], name, True)


@bp.route("/<key>/versions/<int:number>/rollback", methods=["POST"])
@coordinators
def rollback(key: str, number: int):
    pathway = _pathway(key)
    version = services.get_version(pathway, number) or abort(404)
    try:
        restored = services.rollback(version, current_user)
    except workflow.PathwayInvalid as invalid:
        db.session.rollback()
        for problem in invalid.problems:
            flash(_("Cannot publish version %(number)d again: %(problem)s", number=number, problem=str(problem)),
                  "error")
        return redirect(url_for(".version", key=key, number=number))
    db.session.commit()
    flash(_("Version %(old)d is published again as version %(new)d.", old=number, new=restored.number), "info")
    return redirect(url_for(".version", key=key, number=restored.number))


@bp.route("/<key>/test-run", methods=["GET", "POST"])
@coordinators
def test_run(key: str):
    pathway = _pathway(key)
    draft = services.draft_for(pathway)
    status, error = 200, None
    try:
        answers = testrun.parse_answers(request.form.get("answers"))
    except testrun.AnswersInvalid as exc:
        answers, error, status = {}, str(exc), 422
    if request.form.get("action") == "restart":
        answers = {}
    step = request.form.get("step") if request.form.get("action") == "continue" else None
    view = testrun.test_run(pathway, draft, answers, step=step, posted=request.form if step else None)
    if view.form is not None and view.form.errors:
        status = 422
    return render_template("studio/test_run.html", pathway=pathway, draft=draft, view=view,
                           answers_error=error), status
