"""pet-api: the asynchronous JSON API behind the pet app."""

from server.app import make_app

__all__ = ["make_app"]
