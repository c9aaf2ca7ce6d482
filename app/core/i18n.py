"""Locale selection: the user's saved language, then the browser's, then DEFAULT_LOCALE."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import force_locale, get_locale
from flask_login import current_user

LANGUAGE_NAMES = {"en": "English", "es": "Español", "pl": "Polski", "uk": "Українська"}


def select_locale() -> str:
    supported = current_app.config["SUPPORTED_LOCALES"]
    if not has_request_context():  # CLI, workers: the default (messages to people use locale_of)
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    user_locale = getattr(current_user, "locale", "") if current_user else ""
    if user_locale in supported:
        return user_locale
    chosen = session.get("locale")
    if chosen in supported:
        return chosen
    best = request.accept_languages.best_match(supported)
    return best or current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def locale_of(person):
    """Render a message for another person in *their* language (e.g. an SMS to a provider)."""
    locale = getattr(person, "locale", "") or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        yield


def init_app(app: Flask) -> None:
    app.add_template_global(get_locale, "get_locale")

    @app.context_processor
    def _languages():
        return {"LANGUAGE_NAMES": LANGUAGE_NAMES}
