"""What an adapter factory needs to reach one tenant's receiver (from the turn-up record)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from adapters.http import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUTS,
    DEFAULT_TRANSPORT,
    AuthConfig,
    Limits,
    Timeouts,
    TransportKind,
)

OptionValue = str | int | float | bool | None


class ReceiverConfig(BaseModel):
    """Connection and tenancy settings for one client's receiver; secrets stay masked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["http", "https"] = Field(default="https", description="URL scheme.")
    host: str = Field(description="Host name or IP, with ':port' when not the default.")
    base_path: str = Field(default="", description="Path prefix of the API, e.g. '/api/v1'.")
    receiver_client_id: str = Field(description="The client's ID in the receiver.")
    auth: AuthConfig = Field(default_factory=AuthConfig)
    options: dict[str, OptionValue] = Field(
        default_factory=dict,
        description="The adapter's declared custom options, typed, defaults filled in.",
    )
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="Secret options, resolved from their references."
    )
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    limits: Limits = DEFAULT_LIMITS
    transport: TransportKind = Field(
        default=DEFAULT_TRANSPORT, description="HTTP engine; the default won the transport bench."
    )
    verify_tls: bool = Field(default=True, description="Verify the receiver's TLS certificate.")
    ca_file: str | None = Field(default=None, description="Extra CA bundle for private receivers.")

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if not value or "/" in value or "@" in value:
            # Credentials in the URL would end up in logs; they belong in `auth`.
            raise ValueError("host must be 'name' or 'name:port', without scheme, path or user")
        return value

    @field_validator("base_path")
    @classmethod
    def _slash_path(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            value = "/" + value
        return value

    @property
    def base_url(self) -> str:
        """Scheme, host and base path joined, without a trailing slash."""
        return f"{self.scheme}://{self.host}{self.base_path}"

    @property
    def verify(self) -> str | bool:
        """What to hand httpx as `verify`."""
        if not self.verify_tls:
            return False
        return self.ca_file or True
