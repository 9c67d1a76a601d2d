"""A plugin that requires itself."""

from server.plugins import Plugin

PLUGIN = Plugin(name="requires_self", routes=[], requires=("requires_self",))
