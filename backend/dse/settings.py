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
    store_integrity_check: bool = Field(
        True, description="Check a SQLite file's pages (PRAGMA quick_check) at start; refuse to start on damage."
    )
    store_check_interval_s: float = Field(
        1.0, ge=0, description="/health probes the store at most this often (a cached answer in between)."
    )
    max_body_bytes: int = Field(1_048_576, description="Requests with a larger body get 413.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty = CORS off.")
    max_json_depth: int = Field(32, description="Deeper JSON bodies are refused with 422.")
    max_json_containers: int = Field(
        10_000, ge=1, description="Bodies with more '[' and '{' (arrays and objects) are refused with 422 unparsed."
    )
    max_json_strings: int = Field(
        20_000, ge=1, description="Bodies with more strings (counted by their quotes) are refused with 422 unparsed."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="A connection whose request line and headers are not complete by then is closed."
    )
    # Per client (IP address) token buckets: `*_per_minute` tokens flow in, at most `*_burst` are
    # kept; a request takes one. 0 per minute turns a bucket off.
    write_rate_per_minute: float = Field(
        120, ge=0, description="Mutating requests (POST/PUT/PATCH/DELETE other than evaluations) per client."
    )
    write_burst: int = Field(60, ge=1, description="Mutating requests a client may make at once.")
    evaluation_rate_per_minute: float = Field(
        600, ge=0, description="Evaluations (evaluate, sweep, compare, results, reports) per client."
    )
    evaluation_burst: int = Field(120, ge=1, description="Evaluations a client may make at once.")
    save_quota_per_day: int = Field(
        1000, ge=0, description="New scenarios one client may save per day (refilled evenly); 0 = no quota."
    )
    rate_limit_clients: int = Field(
        10_000, ge=1, description="Clients tracked by the rate limiter (least recently seen forgotten first)."
    )


@cache
def get_settings() -> Settings:
    return Settings()
