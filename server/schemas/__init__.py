"""Shared request-model fields and bases (common.py); each feature's models live in its plugin package."""
