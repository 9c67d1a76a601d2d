"""Shared HTTP machinery (BaseHandler); each feature's handlers live in its plugin package, server/plugins/<name>/."""
