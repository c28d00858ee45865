"""Settings: ``SUIMEET_*`` environment variables over an optional TOML file over defaults.

The TOML file is named by ``SUIMEET_CONFIG`` (or ``--config``); its keys are the field names
below (``database_url = "..."``, ``[smtp]`` is not nested: use ``smtp_host`` and so on).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Every setting of the server, with the default a fresh install runs with."""

    model_config = SettingsConfigDict(env_prefix="SUIMEET_", extra="forbid")

    data_dir: Path = Field(
        Path("data"),
        description="Where the SQLite file, the secret key, the mail drop and stored files live.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default: a SQLite file in the data directory. "
        "PostgreSQL: postgresql://user@host/db",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the HTTP server listens on.")
    public_url: str | None = Field(
        None,
        description="Base URL people reach the server at (used in emails); "
        "default http://HOST:PORT",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs links and cookies; generated once into the data directory "
        "when not given.",
    )
    timezone: str = Field("Asia/Shanghai", description="Default time zone of meetings.")
    locale: Literal["zh-CN", "en"] = Field(
        "zh-CN", description="Default language of pages and emails."
    )
    smtp_host: str | None = Field(
        None, description="SMTP server; without it mail goes to DATA_DIR/maildir."
    )
    smtp_port: int = Field(587, description="SMTP port.")
    smtp_username: str | None = Field(None, description="SMTP login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_tls: Literal["none", "starttls", "ssl"] = Field(
        "starttls", description="SMTP transport security."
    )
    mail_from: str = Field("SuiMeet <suimeet@localhost>", description="Sender of emails.")
    ice_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="STUN/TURN URLs given to peers, comma-separated (a list in TOML); empty "
        "by default (no public STUN server).",
    )
    media_host_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses the media server offers as ICE host candidates, "
        "comma-separated; empty: the machine's own.",
    )
    join_early_minutes: int = Field(
        15,
        ge=0,
        le=24 * 60,
        description="How long before a meeting starts its conference can be joined.",
    )
    login_attempts_per_minute: int = Field(
        5, ge=1, description="Failed logins allowed per email and per client address each minute."
    )
    session_hours: int = Field(12, ge=1, description="Lifetime of a login session or token.")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body accepted (JSON APIs)."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    stats_video_target: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Target share of meetings held by video (statistics, dashboard, report).",
    )
    stats_late_minutes: int = Field(
        5,
        ge=0,
        le=120,
        description="A join this long after the start is late; a leave this long before "
        "the end is early.",
    )
    stats_refresh_seconds: float = Field(
        60.0, ge=1, description="How often the statistics' per-occurrence rollup catches up."
    )
    attendance_merge_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="A reconnection within this many seconds continues the same presence.",
    )
    attendance_sample_seconds: float = Field(
        10.0, ge=1, description="How often live participants' media quality is sampled."
    )
    reconnect_grace_seconds: float = Field(
        30.0,
        ge=0,
        le=600,
        description="How long a participant who lost the connection keeps their place "
        "(shown as reconnecting) before they count as left.",
    )
    lobby_timeout_seconds: float = Field(
        600.0,
        ge=10,
        le=24 * 3600,
        description="How long a guest may wait in a conference's lobby to be admitted.",
    )
    recordings_dir: Path | None = Field(
        None,
        description="Where conference recordings are written; default: DATA_DIR/recordings.",
    )

    webhook_allowed_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts (oa.example.gov.cn, *.example.gov.cn) and networks (10.0.0.0/8, "
        "127.0.0.1) webhooks may be sent to; empty: none. Loopback and link-local only "
        "when a listed network contains them.",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="How long one webhook delivery may take."
    )
    webhook_retry_seconds: float = Field(
        30.0,
        gt=0,
        description="First delay before retrying a failed webhook delivery; doubles "
        "each attempt (at most 1 h).",
    )
    idempotency_hours: int = Field(
        24, ge=1, le=24 * 30, description="How long an Idempotency-Key is remembered."
    )
    material_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest meeting document accepted for upload."
    )
    material_link_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts meeting materials may link to (same form as the webhook list); "
        "empty: any http(s) link.",
    )

    @field_validator(
        "ice_servers",
        "media_host_addresses",
        "webhook_allowed_targets",
        "material_link_hosts",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("SUIMEET_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'suimeet.sqlite3').resolve()}"

    @property
    def effective_recordings_dir(self) -> Path:
        return (self.recordings_dir or self.data_dir / "recordings").resolve()

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def secret(self) -> bytes:
        """The signing key: given, or read from (first made in) the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    if config:
        os.environ["SUIMEET_CONFIG"] = config
    settings = Settings(**overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
