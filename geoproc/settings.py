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
    allowed_asset_hosts: str = Field(
        default="",
        description="comma list of asset hosts allowed even on internal addresses",
    )
    allow_local_assets: bool = Field(
        default=False, description="read local-file asset hrefs from a remote catalog"
    )
    dask_address: str | None = Field(default=None, description="tcp:// address of a Dask scheduler")
    device: str = Field(default="auto", description="auto, cpu or cuda")
    max_plan_tiles: int = Field(
        default=20_000,
        description="largest number of processing tiles one request may imply (GEOPROC_MAX_PLAN_TILES)",
    )
    max_plan_tile_steps: int = Field(
        default=5_000_000,
        description="largest tiles x expected time steps one request may imply",
    )

    def resolved_s3_credentials(self) -> tuple[str | None, str | None]:
        """(key id, secret) from GEOPROC_S3_* or, failing that, the AWS_* variables."""
        key = self.s3_access_key_id.get_secret_value() if self.s3_access_key_id else None
        secret = self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else None
        key = key or os.environ.get("AWS_ACCESS_KEY_ID")
        secret = secret or os.environ.get("AWS_SECRET_ACCESS_KEY")
        return key, secret

    def secret_values(self) -> list[str]:
        """Every credential value in play (S3 key id and secret, catalog token, AWS_*)."""
        values = [
            v.get_secret_value()
            for v in (self.s3_access_key_id, self.s3_secret_access_key, self.catalog_token)
            if v is not None
        ]
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            values.append(os.environ.get(name) or "")
        return [v for v in values if len(v) >= 6]

    def catalog_headers(self) -> dict[str, str]:
        """HTTP headers for STAC API requests (the bearer token, when set)."""
        if self.catalog_token is None or not self.catalog_token.get_secret_value():
            return {}
        return {"Authorization": f"Bearer {self.catalog_token.get_secret_value()}"}

    def resolved_s3_endpoint(self) -> str | None:
        return (
            self.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the environment).

    Their secret values are registered with `geoproc.redact`, so log records never carry them.
    """
    from geoproc.redact import register_secrets

    settings = Settings()
    register_secrets(settings.secret_values())
    return settings
