"""Test-only plugins, each mounted by dotted path (tests.plugins.samples.<module>)."""
