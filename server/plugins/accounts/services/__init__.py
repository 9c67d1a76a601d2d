"""Accounts' service functions: users, credentials (changes that revoke tokens), login and its throttling."""
