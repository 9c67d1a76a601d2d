"""A plugin whose migration the database refuses (a syntax error in its second statement)."""

from server.plugins import Plugin

PLUGIN = Plugin(name="migration_refused", routes=[])
