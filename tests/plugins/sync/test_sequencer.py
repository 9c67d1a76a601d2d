"""The sequencer's background passes: a pass the database being away makes fail is one WARNING line, as the other
background tasks' (the rows are numbered by a later pass), never an ERROR with a traceback."""

from __future__ import annotations

import logging

import pytest

from server.db import connect
from server.plugins.sync.sequencer import Sequencer
from tests.conftest import test_config as profile_config


@pytest.mark.gen_test(timeout=20)
async def test_a_pass_that_meets_an_outage_logs_one_warning_line(mysql_url, caplog):
    db = await connect(profile_config(database_url=mysql_url))
    await db.close()  # every statement now answers ServiceUnavailable at once, as with the database away
    sequencer = Sequencer()
    sequencer.start(db)
    with caplog.at_level(logging.WARNING, logger="pet_api.sync"):
        sequencer.nudge()
        await sequencer.idle()
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records if r.name == "pet_api.sync"] == [
        ("WARNING", "sync sequencer pass failed: ServiceUnavailable", None)]
    assert sequencer.passes == 1
