"""The accounts plugin's settings (profile `plugin_settings.accounts`, or `PET_API_ACCOUNTS__<KEY>`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AccountsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    refresh_token_expiration: int = Field(2_592_000, ge=60, description="a session's lifetime from its login (s)")
    session_idle_timeout: int = Field(604_800, ge=60, description="a session unused this long ends (s)")
