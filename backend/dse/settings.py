"""Service settings, read from DSE_* environment variables."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """SQLite in a file under the user's data directory."""
    return f"sqlite:///{Path(user_data_dir('dse', appauthor=False)) / 'scenarios.sqlite3'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DSE_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url, description="SQLAlchemy URL of the store.")
    max_body_bytes: int = Field(1_048_576, description="Requests with a larger body get 413.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty = CORS off.")
    max_json_depth: int = Field(32, description="Deeper JSON bodies are refused with 422.")


@cache
def get_settings() -> Settings:
    return Settings()
