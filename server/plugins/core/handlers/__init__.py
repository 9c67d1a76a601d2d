"""Core handlers: health, the error catalog, the API document and its docs page."""
