"""Administration: organisations, users, roles and languages."""
