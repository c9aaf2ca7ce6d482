"""The service directory: organisations' services, places, eligibility, matching and gaps.

Public API: :func:`init_app` (choice sources for forms), :mod:`.services` (writes and
queries), :mod:`.matching` (which services fit a person), :mod:`.csv_io` (import/export),
:mod:`.taxonomy` (the vocabularies). Blueprint: ``app.directory.routes.bp``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the directory's choice lists with formkit (call before formkit's init_app)."""
    from app.directory.choices import register_sources

    register_sources()
    app.add_template_global(_taxonomy_title, "directory_title")


def _taxonomy_title(vocabulary: str, code: str | None) -> str:
    from app.directory import taxonomy

    return taxonomy.title(getattr(taxonomy, vocabulary), code)
