"""Accounts' handlers: users (registration, profiles, administration) and tokens (log in, log out)."""
