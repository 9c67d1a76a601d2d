"""The accounts plugin's settings (profile `plugin_settings.accounts`, or `PET_API_ACCOUNTS__<KEY>`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class AccountsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    refresh_token_expiration: int = Field(2_592_000, ge=60, description="a session's lifetime from its login (s)")
    session_idle_timeout: int = Field(604_800, ge=60, description="a session unused this long ends (s)")
    password_reset_ttl_seconds: int = Field(1800, ge=60, description="a reset token's lifetime (s)")
    email_verification_ttl_seconds: int = Field(172_800, ge=60, description="a verification token's lifetime (s)")
    require_verified_email: bool = Field(False, description="unverified accounts get no :write scopes (403 on "
                                                            "writes) until they verify")
    mail_requests_per_address: int = Field(10, ge=1, description="reset/verification mails one client address "
                                                                 "may ask for per mail_window_seconds")
    mail_requests_per_account: int = Field(3, ge=1, description="... and one account")
    mail_window_seconds: int = Field(3600, ge=1)
    registrations_per_address: int = Field(20, ge=1, description="registrations one client address may make per "
                                                                  "registration_window_seconds (then 429/1006)")
    registration_window_seconds: int = Field(3600, ge=1)
    link_base: str | None = Field(None, description="the front end's URL; messages link to "
                                                    "<link_base>/reset-password?token=... (else show the token)")
    # Delivery: smtp_url (smtp:// plain, smtp+starttls://, smtps:// implicit TLS), or a directory (dev).
    mail_transport: Literal["smtp", "directory", "none"] = "none"
    smtp_url: str | None = Field(None, description="smtp://host:25, smtp+starttls://host:587, smtps://host:465")
    smtp_username: str | None = None  # from PET_API_ACCOUNTS__SMTP_USERNAME
    smtp_password: SecretStr | None = None  # from PET_API_ACCOUNTS__SMTP_PASSWORD
    smtp_timeout: float = Field(10.0, gt=0)
    mail_from: str = "pet-api <no-reply@example.com>"
    outbox_dir: str = "var/outbox"
    mail_poll_seconds: float = Field(1.0, gt=0, description="how often the sender looks for due messages")
    mail_max_attempts: int = Field(8, ge=1, description="delivery attempts before a message is given up")
    mail_retry_seconds: float = Field(5.0, gt=0, description="the first retry's delay; doubled each attempt")
    # The periodic purge (services/purge.py): what no longer does anything goes after these retentions.
    purge_interval_seconds: float = Field(3600.0, gt=0, description="how often each worker purges (s)")
    session_retention_days: int = Field(30, ge=0, description="ended, expired or idle sessions (and their refresh "
                                                              "tokens) are kept this long, then deleted")
    outbox_retention_days: int = Field(7, ge=0, description="sent or given-up mail is kept this long, then deleted")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("smtp://", "smtp+starttls://", "smtps://")):
            raise ValueError("must be smtp://, smtp+starttls:// or smtps://host:port")
        return value

    @model_validator(mode="after")
    def _transport_complete(self) -> AccountsSettings:
        if self.mail_transport == "smtp" and not self.smtp_url:
            raise ValueError("smtp_url: required when mail_transport is smtp")
        return self
