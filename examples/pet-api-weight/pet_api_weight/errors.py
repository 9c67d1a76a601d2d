"""The plugin's error codes: 2100-2199 are reserved for it (PLUGIN.error_codes)."""

from __future__ import annotations

from server.errors import APIError


class WeightUnitMismatch(APIError):
    status, code, message, message_zh = 422, 2101, "weight unit mismatch", "体重单位不一致"
