"""HTTP handlers; versioned ones live in server.handlers.v1."""
