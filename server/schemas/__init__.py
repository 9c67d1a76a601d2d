"""Declared request models (pydantic): they validate input and describe it in the API document."""
