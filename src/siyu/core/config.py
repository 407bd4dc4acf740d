"""The one typed settings object of siyu, read from `SIYU_*` environment variables (and `.env`).

Validated at start: a placeholder secret outside development refuses to start.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "dev-insecure-change-me"


class Settings(BaseSettings):
    """Every setting siyu reads. Documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        "development", description="Deployment kind; production refuses placeholder secrets."
    )
    database_url: str = Field(
        "sqlite:///siyu.db",
        description="SQLAlchemy URL. Embedded default: a SQLite file (WAL). Production: postgresql+psycopg://…",
    )
    secret_key: str = Field(
        PLACEHOLDER_SECRET, description="Signs session cookies and CSRF tokens. Set a long random value."
    )
    host: str = Field("127.0.0.1", description="Address `siyu serve` binds to.")
    port: int = Field(8000, description="Port `siyu serve` listens on.")
    data_dir: Path = Field(Path("var"), description="Where reject reports and uploads are written.")
    identity_denylist: list[str] = Field(
        default_factory=list,
        description="Extra identity values that never identify a person (e.g. a store's shared phone).",
    )
    webhook_tolerance_seconds: int = Field(
        300, description="An inbound webhook whose timestamp is further from now than this is rejected."
    )
    max_concurrent_requests: int = Field(
        24,
        ge=1,
        description="Requests one server process works on at once; more wait their turn without holding "
        "a thread or a database connection. The connection pool is sized from it.",
    )
    token_cache_seconds: float = Field(
        30,
        description="How long a process remembers which actor an API token stands for (0: no cache). "
        "A revocation takes effect at once in the process that revoked it, and within this time elsewhere.",
    )
    session_max_age_seconds: int = Field(14 * 24 * 3600, description="Lifetime of a login session cookie.")

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.env == "production" and (self.secret_key == PLACEHOLDER_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "SIYU_SECRET_KEY is a placeholder or shorter than 32 characters; "
                "set it to a long random value before running in production "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
