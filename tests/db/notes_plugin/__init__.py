"""A test-only plugin with migrations of its own (its 0001_ beside the core's and the pets plugin's)."""

from server.plugins import Plugin

PLUGIN = Plugin(name="notes", routes=[], requires=("pets",))
