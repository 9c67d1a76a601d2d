"""The plugin's error codes: 2100-2199 are reserved for it (PLUGIN.error_codes)."""

from __future__ import annotations

from server.errors import APIError


class WeightUnitMismatch(APIError):
    """A target sent in another unit than the server's default_unit: refused rather than converted, since the
    records' values carry no unit and a client that assumed the wrong one should learn it (409: it conflicts
    with the server's configured state, like a taken e-mail)."""

    status, code, message, message_zh = 409, 2101, "weight unit mismatch", "体重单位不一致"
