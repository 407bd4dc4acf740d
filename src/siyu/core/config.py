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
    rate_limit_storage: str = Field(
        "memory://",
        description="Where the public endpoints' rate limits are counted: memory:// (one server process) or "
        "redis://host:6379/0, shared by every process of a deployment (needs the redis extra).",
    )
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description='Overrides of named rate limits, e.g. {"livecode.landing": "60/minute"} (JSON); the names '
        "are listed in docs/configuration.md.",
    )
    session_max_age_seconds: int = Field(14 * 24 * 3600, description="Lifetime of a login session cookie.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where customers reach this server (one-click unsubscribe links).",
    )
    fetch_allow_private: bool = Field(
        False,
        description="The server may fetch URLs (a moment's images by URL) that resolve to private, loopback "
        "or link-local addresses; off: only public addresses (the tests turn it on for their local servers).",
    )
    fetch_timeout_seconds: float = Field(
        10.0, gt=0, description="How long the server waits for a URL it fetches (connect, and each read)."
    )
    serve_worker: bool = Field(
        True, description="`siyu serve` runs one reach worker in-process (off when `siyu worker` runs apart)."
    )
    reach_channels: dict[str, str] = Field(
        default_factory=dict,
        description='Adapter per channel, e.g. {"email": "smtp", "sms": "aliyun-sms", "wecom": "wecom"}; '
        "kinds: smtp, webhook, aliyun-sms, wecom, wecom-welcome, log. A channel not named goes to the outbox viewer "
        "only (log), except wecom_welcome (live codes' welcome messages), which goes to WeCom's send_welcome_msg.",
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server of the email channel.")
    smtp_port: int = Field(587, description="SMTP port.")
    smtp_security: Literal["starttls", "tls", "none"] = Field("starttls", description="TLS mode of SMTP.")
    smtp_username: str | None = Field(None, description="SMTP AUTH user (none: no AUTH).")
    smtp_password: str | None = Field(None, description="SMTP AUTH password.")
    smtp_sender: str = Field("siyu <no-reply@localhost>", description="From address of email.")
    reach_webhook_url: str | None = Field(None, description="Where the webhook adapter POSTs messages.")
    reach_webhook_secret: str | None = Field(None, description="HMAC-SHA256 key signing webhook messages.")
    aliyun_sms_access_key_id: str | None = Field(
        None, description="AccessKey id of a RAM user allowed dysms:SendSms (the aliyun-sms adapter)."
    )
    aliyun_sms_access_key_secret: str | None = Field(None, description="Its AccessKey secret.")
    aliyun_sms_sign_name: str | None = Field(
        None, description="The approved sign name (签名) of SMS; a message's content.sign_name overrides it."
    )
    aliyun_sms_template_code: str | None = Field(
        None,
        description="Template (模板) of messages whose content names no template_code, e.g. SMS_123456789.",
    )
    aliyun_sms_text_param: str = Field(
        "content", description="Variable of that default template that carries the message's text."
    )
    aliyun_sms_endpoint: str = Field("https://dysmsapi.aliyuncs.com", description="Dysmsapi endpoint.")
    aliyun_sms_region_id: str = Field("cn-hangzhou", description="RegionId sent with SendSms.")
    reach_results_poll_seconds: float = Field(
        60.0,
        description="How often a reach worker asks WeCom for the results of its open mass messages "
        "(channel wecom); 0: never (`siyu worker --once` still polls once).",
    )
    reach_retry_base_seconds: float = Field(
        30.0, description="First retry wait; doubled per attempt, jittered."
    )
    reach_lease_seconds: float = Field(60.0, description="How long a worker holds a claimed message.")
    reach_batch_size: int = Field(50, ge=1, description="Messages a worker claims at once.")
    reach_poll_seconds: float = Field(
        1.0,
        description="How long an idle worker waits before looking again (a rate-limited one: until its next token).",
    )
    schedule_enabled: bool = Field(
        True,
        description="Workers run the scheduled jobs (live segments, sweeps, daily scores, reconciliation).",
    )
    spark_master: str = Field(
        "local[2]",
        description="Where `siyu metrics --engine spark` runs: local[N], or a Spark Connect URL sc://host:15002.",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description='JSON of Spark settings for that session, e.g. {"spark.driver.memory": "4g"}.',
    )

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
