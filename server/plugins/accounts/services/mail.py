"""Mail: messages are queued in the outbox table in the transaction of the action that sends them (both or
neither), and a background sender in every worker delivers what is due.

Exactly once across workers and instances: a sender claims a message with a conditional UPDATE (a lease of
`smtp_timeout` x 3) before delivering it, and marks it sent after; a failure releases it for a retry with
doubling delay, up to `mail_max_attempts`. The only window for a duplicate is a crash between the SMTP
server's acceptance and the mark; every message carries a Message-ID derived from its outbox id, so the
receiving side can recognise the copy. A sent message's body (which may hold a single-use token) is blanked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from server import periodic
from server.db import Database, Executor, column
from server.db.sqlite import resolve
from server.plugins.accounts.settings import AccountsSettings
from server.services import now_ms, utcnow

log = logging.getLogger("pet_api.mail")

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "password_reset": {
        "en": ("Reset your pet-api password",
               "Hello {nickname},\n\nsomeone (we hope you) asked to reset the password of this account.\n"
               "{action}\n\nThe token works once, for {minutes} minutes. If you did not ask, ignore this "
               "message: your password stays as it is.\n"),
        "zh": ("重置您的 pet-api 密码",
               "{nickname}，您好：\n\n有人（希望是您本人）请求重置此账户的密码。\n{action}\n\n"
               "该令牌只能使用一次，{minutes} 分钟内有效。如果不是您本人的请求，请忽略此邮件，您的密码不会改变。\n"),
    },
    "email_verification": {
        "en": ("Confirm your e-mail address for pet-api",
               "Hello {nickname},\n\nplease confirm that this address is yours.\n{action}\n\n"
               "The token works once, for {minutes} minutes.\n"),
        "zh": ("确认您在 pet-api 的电子邮件地址",
               "{nickname}，您好：\n\n请确认此邮箱地址属于您。\n{action}\n\n"
               "该令牌只能使用一次，{minutes} 分钟内有效。\n"),
    },
}
ACTIONS = {
    "password_reset": {"en": "Open {link} or send this token to POST /v1/password-resets/confirm: {token}",
                       "zh": "请打开 {link}，或将此令牌提交到 POST /v1/password-resets/confirm：{token}"},
    "email_verification": {"en": "Open {link} or send this token to POST /v1/email-verifications/confirm: {token}",
                           "zh": "请打开 {link}，或将此令牌提交到 POST /v1/email-verifications/confirm：{token}"},
}
PATHS = {"password_reset": "reset-password", "email_verification": "verify-email"}


@dataclass(frozen=True, slots=True)
class Mail:
    id: int
    recipient: str
    subject: str
    body: str
    attempts: int


async def enqueue(tx: Executor, settings: AccountsSettings, *, user_id: int, recipient: str, kind: str,
                  language: str, nickname: str, token: str, ttl_seconds: int) -> None:
    """Queue the message of this kind ('password_reset', 'email_verification') in the user's language."""
    lang = language if language in TEMPLATES[kind] else "en"
    subject, text = TEMPLATES[kind][lang]
    link = f"{settings.link_base.rstrip('/')}/{PATHS[kind]}?token={token}" if settings.link_base else "-"
    action = ACTIONS[kind][lang].format(link=link, token=token)
    body = text.format(nickname=nickname, action=action, minutes=ttl_seconds // 60)
    await tx.execute_later("INSERT INTO outbox (user_id, recipient, subject, body, created_at, next_attempt_ms)"
                           " VALUES (%s, %s, %s, %s, %s, %s)", (user_id, recipient, subject, body, utcnow(), now_ms()))


def build_message(mail: Mail, settings: AccountsSettings) -> EmailMessage:
    """The RFC 5322 message of an outbox row."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    domain = re.sub(r".*@|>.*", "", settings.mail_from) or "pet-api"
    message["Message-ID"] = f"<outbox-{mail.id}@{domain}>"
    message.set_content(mail.body)
    return message


# The due messages, through the index on what is due whatever MariaDB estimates: a sent message leaves its old (unsent)
# entry in that index until InnoDB's purge removes it, which waits for every older read view (a long transaction, a
# dump's snapshot). Counting those entries, the optimizer took the primary key in id order instead and read the whole
# outbox on every poll of every worker (tests/plugins/accounts/services/test_mail.py).
DUE = ("SELECT id FROM outbox{index} WHERE sent_at_ms IS NULL AND failed_at_ms IS NULL AND next_attempt_ms <= %s"
       " AND (claimed_until_ms IS NULL OR claimed_until_ms < %s) ORDER BY id LIMIT %s")


class MailSender:
    """Delivers due outbox messages in the background: over SMTP, or into a directory (dev)."""

    def __init__(self, settings: AccountsSettings, *, batch: int = 20) -> None:
        self.settings = settings
        self.batch = batch
        self.owner = f"{os.getpid()}-{id(self):x}"
        self._task: asyncio.Task[None] | None = None

    def start(self, db: Database) -> None:
        """Keep delivering until stop()."""
        if self.settings.mail_transport == "none":
            log.info("mail: no transport (plugin_settings.accounts.mail_transport): messages stay in the outbox")
            return

        def failed(exc: Exception) -> None:
            log.warning("mail: sending round failed: %s", exc.__class__.__name__)

        self._task = periodic.start_every(lambda: self.settings.mail_poll_seconds, lambda: self.deliver_due(db),
                                          failed)

    async def stop(self) -> None:
        await periodic.stop(self._task)

    async def deliver_due(self, db: Database) -> int:
        """Claim and deliver the messages that are due; how many were sent."""
        now = now_ms()
        rows = await db.fetch_all(DUE.format(index=db.dialect.through_index("ix_outbox_due")),
                                  (now, now, self.batch))
        sent = 0
        for row in rows:
            mail = await self._claim(db, column(row[0], int))
            if mail is not None:
                sent += await self._deliver(db, mail)
        return sent

    async def _claim(self, db: Database, mail_id: int) -> Mail | None:
        now = now_ms()
        lease = now + int(self.settings.smtp_timeout * 3000)
        claimed = await db.execute(
            "UPDATE outbox SET claimed_until_ms = %s WHERE id = %s AND sent_at_ms IS NULL AND failed_at_ms IS NULL"
            " AND (claimed_until_ms IS NULL OR claimed_until_ms < %s)", (lease, mail_id, now))
        if claimed.rowcount != 1:  # another worker or instance has it
            return None
        row = await db.fetch_one("SELECT recipient, subject, body, attempts FROM outbox WHERE id = %s", (mail_id,))
        if row is None:  # its account was deleted meanwhile
            return None
        return Mail(mail_id, column(row[0], str), column(row[1], str), column(row[2], str), column(row[3], int))

    async def _deliver(self, db: Database, mail: Mail) -> int:
        try:
            await self.transmit(build_message(mail, self.settings))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            attempts = mail.attempts + 1
            given_up = attempts >= self.settings.mail_max_attempts
            delay = self.settings.mail_retry_seconds * 2 ** (attempts - 1)
            await db.execute("UPDATE outbox SET attempts = %s, claimed_until_ms = NULL, next_attempt_ms = %s,"
                             " failed_at_ms = %s, last_error = %s WHERE id = %s",
                             (attempts, now_ms() + int(delay * 1000), now_ms() if given_up else None,
                              exc.__class__.__name__[:255], mail.id))
            log.warning("mail %d: attempt %d failed (%s)%s", mail.id, attempts, exc.__class__.__name__,
                        ", given up" if given_up else "")
            return 0
        await db.execute("UPDATE outbox SET sent_at_ms = %s, attempts = attempts + 1, body = '' WHERE id = %s",
                         (now_ms(), mail.id))
        log.info("mail %d sent", mail.id)
        return 1

    async def transmit(self, message: EmailMessage) -> None:
        """Hand one message to the transport."""
        settings = self.settings
        if settings.mail_transport == "directory":
            folder = Path(resolve(settings.outbox_dir))  # relative to the project folder, as the SQLite file is
            await asyncio.to_thread(_write_file, folder, message)
            return
        url = urlsplit(settings.smtp_url or "smtp://127.0.0.1:25")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        await aiosmtplib.send(
            message, hostname=url.hostname or "127.0.0.1", port=url.port or (465 if url.scheme == "smtps" else 25),
            username=settings.smtp_username or (unquote(url.username) if url.username else None),
            password=password or (unquote(url.password) if url.password else None),
            use_tls=url.scheme == "smtps", start_tls=url.scheme == "smtp+starttls",
            timeout=settings.smtp_timeout)


def _write_file(folder: Path, message: EmailMessage) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = str(message["Message-ID"]).strip("<>").replace("@", "_")
    (folder / f"{name}.eml").write_bytes(bytes(message))
