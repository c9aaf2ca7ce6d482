"""Cross-cutting pieces every domain uses: database types, locale selection, error pages."""
