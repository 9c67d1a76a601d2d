"""The outbox sender: exactly once across senders (workers, instances), retries with backoff while the SMTP
server is away, the dev profile's directory; real SMTP (aiosmtpd), MariaDB and SQLite."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from contextlib import closing
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from server.config import load_config
from server.plugins.accounts.services.mail import MailSender, enqueue
from server.plugins.accounts.settings import AccountsSettings
from tests.factories import both_backends, create_user
from tests.mail import mail_settings
from tests.mariadb_server import connect_server, older_read_view, rows_read
from tests.processes import ROOT


def settings(port: int, **more: Any) -> AccountsSettings:
    return AccountsSettings.model_validate(mail_settings(port, **more)["accounts"])


async def queue(app: Any, user: Any, count: int) -> None:
    for n in range(count):
        await enqueue(app.db, app.accounts.settings, user_id=user.id, recipient=user.email, kind="password_reset",
                      language="en", nickname=f"n{n}", token=f"tok-{n}", ttl_seconds=1800)


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_four_senders_at_once_deliver_each_message_exactly_once(app, smtp_server):
    inbox, port = smtp_server
    user = await create_user(app)
    await queue(app, user, 30)
    senders = [MailSender(settings(port), batch=50) for _ in range(4)]  # four workers or instances
    counts = await asyncio.gather(*(s.deliver_due(app.db) for s in senders))
    assert sum(counts) == 30
    messages = await inbox.wait_for(user.email, 30)
    assert sorted(m["Message-ID"] for m in messages) == sorted({m["Message-ID"] for m in messages})
    assert len(messages) == 30
    rows = await app.db.fetch_all("SELECT attempts, body FROM outbox WHERE sent_at_ms IS NOT NULL")
    assert [(r[0], r[1]) for r in rows] == [(1, "")] * 30
    assert sum(await asyncio.gather(*(s.deliver_due(app.db) for s in senders))) == 0  # nothing twice


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_message_is_retried_with_backoff_while_smtp_is_away_then_delivered(app, smtp_server):
    inbox, port = smtp_server
    user = await create_user(app)
    await queue(app, user, 1)
    away = MailSender(settings(1, mail_retry_seconds=0.2, smtp_timeout=1.0))  # nothing listens on port 1
    assert await away.deliver_due(app.db) == 0
    row = await app.db.fetch_one("SELECT attempts, last_error, sent_at_ms, failed_at_ms FROM outbox")
    assert row is not None and (row[0], row[2], row[3]) == (1, None, None) and row[1]
    assert await away.deliver_due(app.db) == 0  # not due yet: the retry waits
    await asyncio.sleep(0.3)
    back = MailSender(settings(port))
    assert await back.deliver_due(app.db) == 1
    [message] = await inbox.wait_for(user.email)
    assert "tok-0" in message.get_content()


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_message_is_given_up_after_the_last_attempt(app):
    user = await create_user(app)
    await queue(app, user, 1)
    sender = MailSender(settings(1, mail_retry_seconds=0.01, mail_max_attempts=2, smtp_timeout=1.0))
    for _ in range(2):
        await asyncio.sleep(0.05)
        await sender.deliver_due(app.db)
    row = await app.db.fetch_one("SELECT attempts, failed_at_ms FROM outbox")
    assert row is not None and row[0] == 2 and row[1] is not None
    await asyncio.sleep(0.05)
    assert await sender.deliver_due(app.db) == 0


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_directory_transport_writes_each_message_as_a_file(app, tmp_path: Path):
    user = await create_user(app)
    await queue(app, user, 2)
    folder = tmp_path / "outbox"
    sender = MailSender(AccountsSettings(mail_transport="directory", outbox_dir=str(folder)))
    assert await sender.deliver_due(app.db) == 2
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert (parsed["To"], parsed["Subject"]) == (user.email, "Reset your pet-api password")


@pytest.mark.gen_test(timeout=60)
async def test_a_round_reads_the_due_messages_only_while_purge_is_held_back(app, config, tmp_path: Path):
    """A sent message leaves its unsent entry in the due index until purge, which waits for the oldest read view (a
    long transaction, a dump's snapshot): each worker's round still reads the due messages, not the whole outbox."""
    user = await create_user(app)
    sender = MailSender(AccountsSettings(mail_transport="directory", outbox_dir=str(tmp_path / "outbox")))
    queued = ("INSERT INTO outbox (user_id, recipient, subject, body, created_at, next_attempt_ms)"
              " SELECT %s, %s, 'Hello', 'Text', NOW(6), 0 FROM seq_1_to_{}")
    await app.db.execute(queued.format(3000), (user.id, user.email))
    # the snapshot's read view makes purge keep every entry the sending below replaces
    with closing(connect_server(config.database_url)) as probe, older_read_view(config.database_url) as snapshot:
        snapshot.execute("SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL")
        assert snapshot.fetchone() == (3000,)
        await app.db.execute("UPDATE outbox SET sent_at_ms = 1, attempts = 1, body = ''")  # as if sent
        await app.db.execute(queued.format(10), (user.id, user.email))
        before = rows_read(probe)
        assert await sender.deliver_due(app.db) == 10
        read = rows_read(probe) - before
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 10
    row = await app.db.fetch_one("SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL")
    assert row is not None and row[0] == 0
    assert read < 300, f"the round read {read} rows to send 10 of 3,010"


@pytest.mark.gen_test(timeout=60)
async def test_a_relative_outbox_dir_is_in_the_project_folder_whatever_the_cwd(app, tmp_path, monkeypatch):
    """As the dev profile's SQLite file is: `cd /tmp && python /path/main.py` wrote /tmp/var/outbox/."""
    relative = f"var/test-outbox-{uuid.uuid4().hex}"
    monkeypatch.chdir(tmp_path)
    user = await create_user(app)
    await queue(app, user, 1)
    try:
        assert await MailSender(AccountsSettings(mail_transport="directory", outbox_dir=relative)).deliver_due(
            app.db) == 1
        assert len(list((ROOT / relative).glob("*.eml"))) == 1
        assert not (tmp_path / "var").exists()
    finally:
        shutil.rmtree(ROOT / relative, ignore_errors=True)


def test_the_dev_profile_writes_mail_to_var_outbox():
    config = load_config("dev", environ={})
    assert config.plugin_settings["accounts"]["mail_transport"] == "directory"
    assert config.plugin_settings["accounts"]["outbox_dir"] == "var/outbox"


def test_smtp_url_must_be_smtp():
    with pytest.raises(ValueError, match="must be smtp://"):
        AccountsSettings(smtp_url="http://mail.example.com")


def test_the_smtp_transport_needs_an_smtp_url():
    with pytest.raises(ValueError, match="smtp_url"):
        AccountsSettings(mail_transport="smtp")
