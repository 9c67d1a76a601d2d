"""Each dialect's pieces of SQL, run by its own database."""

from __future__ import annotations

import pytest

from server.db import column
from tests.factories import both_backends

EVERY_BYTE = bytes(range(256))


@both_backends
@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("data", [b"", b"'", b"\\'", b"\x00", EVERY_BYTE, EVERY_BYTE * 1000 + b"\xff\x00"],
                         ids=["empty", "quote", "escaped-quote", "nul", "every-byte", "long"])
async def test_a_blob_literal_is_read_back_as_its_bytes(app, data):
    literal = app.db.dialect.blob(data)
    assert literal.count("'") == 2  # its bytes need no escaping: only the two quotes around them
    row = await app.db.fetch_one(f"SELECT {literal}")  # noqa: S608 - the dialect's literal of our own bytes
    assert row is not None
    assert column(row[0], bytes) == data
