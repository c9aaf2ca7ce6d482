"""Users, organisations, roles, login and permission checks."""
