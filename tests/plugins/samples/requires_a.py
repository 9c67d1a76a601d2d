"""A plugin that requires requires_b, which requires it: a cycle."""

from server.plugins import Plugin

PLUGIN = Plugin(name="requires_a", routes=[], requires=("pets", "requires_b"))
