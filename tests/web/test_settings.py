"""Settings come from SUIMEET_* variables over an optional TOML file over the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from web.settings import Settings, load_settings


def test_defaults_contact_no_third_party(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("SUIMEET_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.ice_servers == [] and settings.media_host_addresses == []
    assert settings.timezone == "Asia/Shanghai" and settings.port == 8080
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("data/suimeet.sqlite3")
    key = settings.secret()
    assert len(key) > 40 and settings.secret() == key  # generated once, then reused


def test_toml_file_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "suimeet.toml"
    config.write_text(
        'port = 9000\ntimezone = "Asia/Urumqi"\nice_servers = ["turn:turn.gz.gov.cn:3478"]\n'
        f'data_dir = "{tmp_path / "d"}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SUIMEET_CONFIG", str(config))
    monkeypatch.setenv("SUIMEET_PORT", "9100")
    monkeypatch.setenv("SUIMEET_MEDIA_HOST_ADDRESSES", "10.0.0.5, 127.0.0.1")
    settings = Settings()
    assert settings.port == 9100  # the environment wins over the file
    assert settings.timezone == "Asia/Urumqi"
    assert settings.ice_servers == ["turn:turn.gz.gov.cn:3478"]
    assert settings.media_host_addresses == ["10.0.0.5", "127.0.0.1"]


def test_unknown_or_invalid_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("colour = 'red'\n", encoding="utf-8")
    monkeypatch.setenv("SUIMEET_CONFIG", str(config))
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("SUIMEET_CONFIG")
    monkeypatch.setenv("SUIMEET_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()
