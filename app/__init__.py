"""Pathways: referral pathways for humanitarian protection, run as BPMN."""

from __future__ import annotations

from flask import Flask

from app.config import load_config


def create_app(config: dict | None = None) -> Flask:
    """Build the application: config -> extensions -> blueprints -> CLI."""
    app = Flask(__name__, instance_path=str(_instance_path()))
    app.config.update(load_config(config))

    _trust_proxies(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    return app


def _instance_path():
    from app.config import INSTANCE_DIR

    return INSTANCE_DIR


def _trust_proxies(app: Flask) -> None:
    """Behind ``PROXY_FIX_HOPS`` proxies (TLS termination), take the client's address, scheme and
    host from exactly that many ``X-Forwarded-*`` values; a value a client adds is not used.

    Not the port (``X-Forwarded-Port: 443`` would make the host ``name:443``, which the forms'
    referrer check then takes for another site) nor a path prefix: the app is served at the root
    of the host, and its own address for links and signatures is ``PUBLIC_BASE_URL``."""
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=0, x_prefix=0)


def _init_extensions(app: Flask) -> None:
    from app.core import database, i18n
    from app.extensions import babel, csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/migrations"),
                     render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    login_manager.init_app(app)
    database.init_app(app)
    i18n.init_app(app)
    # Import every model so Alembic and the mapper registry see them.
    from app import models  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from app.admin.routes import bp as admin_bp
    from app.auth.routes import bp as auth_bp
    from app.core import errors
    from app.core.routes import bp as core_bp
    from app.directory import init_app as init_directory
    from app.directory.routes import bp as directory_bp
    from app.formkit import init_app as init_formkit
    from app.inbox.routes import bp as inbox_bp
    from app.notifications.routes import bp as notifications_bp
    from app.referrals.routes import bp as referrals_bp
    from app.sms import init_app as init_sms
    from app.sms.routes import bp as sms_dev_bp
    from app.sms.routes import webhooks as sms_webhooks_bp
    from app.studio.routes import bp as studio_bp

    for blueprint in (core_bp, auth_bp, admin_bp, referrals_bp, inbox_bp, directory_bp, notifications_bp,
                      studio_bp, sms_dev_bp, sms_webhooks_bp):
        app.register_blueprint(blueprint)
    errors.init_app(app)
    init_directory(app)  # the directory's choice lists, before the forms load
    from app.referrals.steps import init_app as init_referral_steps

    init_referral_steps(app)  # choice lists and service tasks, before the forms load
    init_formkit(app)
    init_sms(app)  # queue the new-referral SMS when a target is created
    from app.audit.services import event_title

    app.add_template_global(event_title, "event_title")
    from app.notifications.services import unread_count

    app.add_template_global(unread_count, "unread_notifications")


def _register_cli(app: Flask) -> None:
    from app.cli import register

    register(app)
