"""Each invalid connection is rejected with a message naming the field, the value and the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_pigment_redshift.connection_settings import (
    InvalidConnectionError,
    PigmentConnectionSettings,
    RedshiftConnectionSettings,
    UnknownExtraFieldWarning,
)
from airflow_pigment_redshift.hooks.pigment import PigmentHook
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook, RedshiftTarget

ACCESS_KEY = "AKIAEXAMPLEKEY12"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
VALID_EXTRA = {
    "region_name": "eu-west-1",
    "cluster_identifier": "analytics",
    "db_user": "pigment_db_user",
    "database": "dev",
}
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pigment-db-AbCdEf"


def redshift_settings(
    extra: dict[str, Any], login: str | None = ACCESS_KEY, password: str | None = SECRET_KEY
) -> RedshiftConnectionSettings:
    return RedshiftConnectionSettings.from_connection("analytics_redshift", login, password, extra)


def pigment_settings(password: str | None = "pgm-import-key-123", **extra: Any) -> PigmentConnectionSettings:
    return PigmentConnectionSettings.from_connection(
        "pigment_prod", password, extra, default_base_url="https://pigment.app"
    )


def test_valid_cluster_connection():
    settings = redshift_settings(VALID_EXTRA)

    assert settings.target_description == "cluster analytics"
    assert settings.database_authentication == "db_user"
    assert SECRET_KEY not in repr(settings)


def test_valid_serverless_with_secret():
    settings = redshift_settings(
        {"region_name": "eu-west-1", "workgroup_name": "pigment-wg", "database": "dev", "secret_arn": SECRET_ARN},
        login=None,
        password=None,
    )

    assert settings.target_description == "workgroup pigment-wg"
    assert settings.database_authentication == "secret"
    assert settings.aws_credentials == "default AWS chain"


def test_unknown_region_rejected():
    with pytest.raises(InvalidConnectionError, match=r"'Region' \(region_name\) 'eu-westt-1' is not an AWS region"):
        redshift_settings({**VALID_EXTRA, "region_name": "eu-westt-1"})


@pytest.mark.parametrize("cluster", ["Analytics", "1cluster", "my--cluster", "cluster-", "my_cluster", "a" * 64])
def test_malformed_cluster_identifier_rejected(cluster):
    with pytest.raises(InvalidConnectionError, match="'Redshift cluster name'.*is not a valid cluster identifier"):
        redshift_settings({**VALID_EXTRA, "cluster_identifier": cluster})


def test_cluster_and_workgroup_rejected():
    with pytest.raises(
        InvalidConnectionError,
        match=r"both 'Redshift cluster name' \(cluster_identifier\) and 'Redshift Serverless workgroup'",
    ):
        redshift_settings({**VALID_EXTRA, "workgroup_name": "pigment-wg"})


def test_no_target_rejected():
    with pytest.raises(InvalidConnectionError, match="neither 'Redshift cluster name'.*Fill in exactly one"):
        redshift_settings({"region_name": "eu-west-1", "database": "dev"})


def test_db_user_with_secret_rejected():
    with pytest.raises(
        InvalidConnectionError,
        match=r"both 'Database user' \(db_user\) and 'Secrets Manager secret ARN' \(secret_arn\)",
    ):
        redshift_settings({**VALID_EXTRA, "secret_arn": SECRET_ARN})


def test_db_user_with_workgroup_rejected():
    extra = {"region_name": "eu-west-1", "workgroup_name": "pigment-wg", "db_user": "pigment_db_user"}

    with pytest.raises(InvalidConnectionError, match="'Database user'.*is set with 'Redshift Serverless workgroup'"):
        redshift_settings(extra)


def test_secret_key_without_access_key_rejected():
    with pytest.raises(
        InvalidConnectionError, match=r"'Secret access key' \(password\) is set but 'Access key ID' \(login\) is empty"
    ) as raised:
        redshift_settings(VALID_EXTRA, login="  ")

    assert SECRET_KEY not in str(raised.value)


def test_access_key_without_secret_rejected():
    with pytest.raises(InvalidConnectionError, match="'Access key ID'.*is set but 'Secret access key'.*is empty"):
        redshift_settings(VALID_EXTRA, password="")


def test_malformed_secret_and_role_arns_rejected():
    with pytest.raises(InvalidConnectionError, match="is not a Secrets Manager secret ARN"):
        redshift_settings({**VALID_EXTRA, "db_user": None, "secret_arn": "pigment-db"})
    with pytest.raises(InvalidConnectionError, match="is not an IAM role ARN"):
        redshift_settings({**VALID_EXTRA, "role_arn": "arn:aws:iam::123:user/x"})


def test_unknown_redshift_extra_key_warns_with_known_keys():
    with pytest.warns(UnknownExtraFieldWarning, match="cluster_identifer") as recorded:
        redshift_settings({**VALID_EXTRA, "cluster_identifer": "analytics"})

    message = str(recorded[0].message)
    assert "Known keys:" in message
    assert "cluster_identifier" in message
    assert "workgroup_name" in message


def test_aws_passthrough_keys_do_not_warn(recwarn):
    redshift_settings({**VALID_EXTRA, "aws_session_token": "token", "config_kwargs": {"retries": {}}})

    assert not [warning for warning in recwarn if warning.category is UnknownExtraFieldWarning]


def test_http_base_url_to_remote_host_rejected():
    with pytest.raises(InvalidConnectionError, match=r"'http://pigment.example.com' uses http:// to a non-loopback"):
        pigment_settings(base_url="http://pigment.example.com")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:9000"])
def test_http_base_url_to_loopback_accepted(url):
    assert pigment_settings(base_url=url).base_url == url


@pytest.mark.parametrize("key", ['"pgm-key"', "'pgm-key'", " pgm-key", "pgm-key\n", "pgm key"])
def test_api_key_with_blanks_or_quotes_rejected(key):
    with pytest.raises(InvalidConnectionError, match="contains spaces, line breaks or quote characters") as raised:
        pigment_settings(password=key)

    assert "pgm-key" not in str(raised.value)


def test_unknown_pigment_extra_key_warns_with_known_keys():
    with pytest.warns(UnknownExtraFieldWarning, match=r"api_url.*Known keys: base_url, key_expires_on, request_timeout"):
        pigment_settings(api_url="https://pigment.app")


def test_timeout_and_expiry_parsed():
    settings = pigment_settings(request_timeout="45", key_expires_on="2027-07-01")

    assert settings.request_timeout == 45.0
    assert settings.key_expires_on.isoformat() == "2027-07-01"
    assert "pgm-import-key-123" not in repr(settings)


@pytest.mark.parametrize(("extra", "message"), [
    ({"request_timeout": "-1"}, "is not a positive number of seconds"),
    ({"request_timeout": "soon"}, "is not a positive number of seconds"),
    ({"key_expires_on": "07/01/2027"}, "is not a date. Use YYYY-MM-DD"),
])
def test_bad_timeout_or_expiry_rejected(extra, message):
    with pytest.raises(InvalidConnectionError, match=message):
        pigment_settings(**extra)


def test_hook_target_for_serverless_secret(monkeypatch):
    connection = {
        "conn_type": "pigment_redshift",
        "extra": {"region_name": "eu-west-1", "workgroup_name": "pigment-wg", "database": "dev",
                  "secret_arn": SECRET_ARN, "allowed_applications": "Finance"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SERVERLESS", json.dumps(connection))
    hook = RedshiftDataApiHook("serverless")

    assert hook.target == RedshiftTarget(None, None, "dev", workgroup_name="pigment-wg", secret_arn=SECRET_ARN)
    assert hook.target.as_request() == {"Database": "dev", "WorkgroupName": "pigment-wg", "SecretArn": SECRET_ARN}
    assert "allowed_applications" not in hook.conn_config.extra_config
    assert "workgroup_name" not in hook.conn_config.extra_config


def test_pigment_hook_uses_connection_timeout(monkeypatch):
    connection = {"conn_type": "pigment", "password": "pgm-key", "extra": {"request_timeout": 12}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))

    with PigmentHook().get_client() as client:
        assert client.timeout.read == 12.0
    with PigmentHook(timeout=3).get_client() as client:
        assert client.timeout.read == 3.0
