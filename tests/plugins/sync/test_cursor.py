"""Sync cursors: signed with HMAC-SHA256; those a client kept from before the change (HMAC-SHA1) still load."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer

from server.errors import InvalidParameter
from server.plugins.sync.cursor import SALT, Cursors, Position

KEY = "cursor-test-key-0123456789"


def test_cursors_are_hmac_sha256_and_sha1_ones_from_before_still_load():
    cursors = Cursors([KEY])
    position = Position(seq=12, key=3)
    text = cursors.dump(5, position)
    assert len(text.rpartition(".")[2]) == 43  # 32 bytes of HMAC-SHA256 in unpadded base64
    before = URLSafeSerializer([KEY], salt=SALT).dumps([5, 12, 3])  # the previous release's HMAC-SHA1
    assert len(before.rpartition(".")[2]) == 27
    assert cursors.load(5, before) == cursors.load(5, text) == position
    with pytest.raises(InvalidParameter):
        cursors.load(6, before)  # still bound to its user
    with pytest.raises(InvalidParameter):
        Cursors(["another-key-0123456789"]).load(5, before)
