"""Environment settings, read at the edges (CLI, flows), never deep in the library.

Every variable carries the `GEOPROC_` prefix; S3 credentials fall back to the standard
AWS variables so a machine already configured for the AWS CLI works unchanged.
"""

from __future__ import annotations

import os

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings; secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(env_prefix="GEOPROC_", extra="ignore")

    s3_endpoint_url: str | None = Field(
        default=None, description="S3 API endpoint (MinIO, moto, ...)"
    )
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_anonymous: bool = False
    catalog_token: SecretStr | None = Field(default=None, description="Bearer token for a STAC API")
    dask_address: str | None = Field(default=None, description="tcp:// address of a Dask scheduler")
    device: str = Field(default="auto", description="auto, cpu or cuda")

    def resolved_s3_credentials(self) -> tuple[str | None, str | None]:
        """(key id, secret) from GEOPROC_S3_* or, failing that, the AWS_* variables."""
        key = self.s3_access_key_id.get_secret_value() if self.s3_access_key_id else None
        secret = self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else None
        key = key or os.environ.get("AWS_ACCESS_KEY_ID")
        secret = secret or os.environ.get("AWS_SECRET_ACCESS_KEY")
        return key, secret

    def resolved_s3_endpoint(self) -> str | None:
        return (
            self.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the environment)."""
    return Settings()
