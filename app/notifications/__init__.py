"""Notifications to users: in the app (a list with an unread count) and, for users who chose
it, by SMS through the outbox — never with personal data."""
