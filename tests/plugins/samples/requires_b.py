"""A plugin that requires requires_a, which requires it: a cycle."""

from server.plugins import Plugin

PLUGIN = Plugin(name="requires_b", routes=[], requires=("requires_a",))
