"""The client commands' configuration: the server's URL and the API token (docs/cli.md).

Each comes from, first found: the flag (`--server`, `--token`), the environment
(`FFPOOL_SERVER`, `FFPOOL_TOKEN`), the config file, else the default. The file is TOML with
keys `server` and `token`: `$FFPOOL_CONFIG`, else `$XDG_CONFIG_HOME/ffpool/config.toml`, else
`~/.config/ffpool/config.toml`. A file holding a token that anyone but its owner may read is
refused, as ssh refuses such a key: the token is a password.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ffpool.client import endpoints

DEFAULT_SERVER: Final = "http://127.0.0.1:8081"
SERVER_ENV: Final = "FFPOOL_SERVER"
CONFIG_ENV: Final = "FFPOOL_CONFIG"
# FFPOOL_SERVER, FFPOOL_TOKEN (names.TOKEN_ENV): the env source reads `<prefix><field>`.
ENV_PREFIX: Final = "FFPOOL_"
# Bits of a file's mode that let someone other than its owner in (ssh's rule for keys).
NOT_PRIVATE: Final = stat.S_IRWXG | stat.S_IRWXO


class ConfigError(Exception):
    """The configuration cannot be used; the message says why and what to do."""


def config_path(env: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file's path, and whether it was named explicitly ($FFPOOL_CONFIG)."""
    if named := env.get(CONFIG_ENV):
        return Path(named).expanduser(), True
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "ffpool" / "config.toml", False


class ClientConfig(BaseSettings):
    """Flags are given as init values; the environment and the file fill what they leave."""

    # An empty `FFPOOL_TOKEN=` is unset, not an empty token that hides the file's.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_ignore_empty=True)

    server: str = DEFAULT_SERVER
    token: SecretStr | None = None

    @field_validator("server")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        return endpoints.checked(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path, _ = config_path(os.environ)
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path)

    def token_value(self) -> str | None:
        """The token, None when none or empty (no Authorization header then)."""
        return (self.token.get_secret_value() or None) if self.token is not None else None


def check_file(path: Path, explicit: bool) -> None:
    """Refuse a config file that cannot be used: missing though named, not TOML, or holding
    a token that group or others may read."""
    if not path.exists():
        if explicit:
            raise ConfigError(f"${CONFIG_ENV} names {path}, which does not exist")
        return
    try:
        # What the settings read from the file, keys as they match fields (case-insensitively:
        # `TOKEN` and `Token` are the token too), not the file's own spelling.
        loaded = TomlConfigSettingsSource(ClientConfig, path)()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    if loaded.get("token") and path.stat().st_mode & NOT_PRIVATE:
        raise ConfigError(
            f"config file {path} holds a token and others can read it; "
            f"make it private: chmod 600 {path}"
        )


def load(server: str | None = None, token: str | None = None) -> ClientConfig:
    """The configuration for these flags (None: not given). Blocking: reads the file."""
    path, explicit = config_path(os.environ)
    check_file(path, explicit)
    given = {k: v for k, v in {"server": server, "token": token}.items() if v is not None}
    try:
        return ClientConfig(**given)  # type: ignore[arg-type]  # pydantic-settings' init
    except ValidationError as exc:
        problems = "; ".join(str(e.get("ctx", {}).get("error", e["msg"])) for e in exc.errors())
        raise ConfigError(f"configuration (flags, environment or {path}): {problems}") from None
