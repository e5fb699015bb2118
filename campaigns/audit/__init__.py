"""Audit trail: who changed a provider account, an account's settings, a route, a sender name or
an opt-out, when, and from what to what. See `recorder` for how changes are caught."""
