"""Fixtures that start Redshift Data API emulators on 127.0.0.1 and boto3 clients pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator


@pytest.fixture
def aws_isolation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep boto3 away from the instance metadata service and from the user's AWS configuration."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_REDSHIFT_DATA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_redshift_emulator() -> Iterator[Callable[..., RedshiftDataEmulator]]:
    """Return a factory that starts a Redshift Data API emulator with the given settings; all stop at teardown."""
    started: list[RedshiftDataEmulator] = []

    def start(**settings: Any) -> RedshiftDataEmulator:
        emulator = RedshiftDataEmulator(**settings)
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def make_redshift_client(endpoint: RedshiftDataEmulator | str) -> Any:
    """Return a boto3 ``redshift-data`` client for an emulator or endpoint URL.

    The client uses dummy credentials and makes a single attempt per call, without retries.
    """
    url = endpoint if isinstance(endpoint, str) else endpoint.url
    return boto3.client(
        "redshift-data",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
    )


@pytest.fixture
def redshift_client_factory(aws_isolation: None) -> Callable[[RedshiftDataEmulator | str], Any]:
    """Return a function that builds a boto3 ``redshift-data`` client for an emulator or endpoint URL."""
    return make_redshift_client
