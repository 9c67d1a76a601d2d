"""Handlers of the /v1 API."""
