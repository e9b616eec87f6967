"""Credentials never appear in repr(), trigger kwargs or exception messages."""

from __future__ import annotations

import json

import pytest

from airflow_pigment_redshift.exceptions import PigmentRequestError
from airflow_pigment_redshift.hooks.pigment import PigmentHook
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.triggers.pigment_import import PigmentImportTrigger
from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID
from tests.helpers import serve

AWS_SECRET_KEY = "wJalrXUtnFEMI-exposure-5c1d"
AWS_SESSION_TOKEN = "FwoGZXIvYXdzE-exposure-8e2f"
PIGMENT_KEY = "M2pwLXBpZ21lbnQ-exposure-3a9b"
SECRETS = (AWS_SECRET_KEY, AWS_SESSION_TOKEN, PIGMENT_KEY)


@pytest.fixture
def secret_connections(monkeypatch):
    redshift_connection = {
        "conn_type": "pigment_redshift",
        "login": "AKIATESTACCESSKEY",
        "password": AWS_SECRET_KEY,
        "extra": {
            "region_name": "eu-west-1",
            "cluster_identifier": "test-cluster",
            "database": "dev",
            "aws_session_token": AWS_SESSION_TOKEN,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(redshift_connection))


def use_pigment(monkeypatch, base_url: str) -> None:
    connection = {"conn_type": "pigment", "password": PIGMENT_KEY, "extra": {"base_url": base_url}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_aws_connection_repr_hides_credentials(secret_connections):
    config = RedshiftDataApiHook().conn_config

    assert_no_secret(repr(config))
    assert_no_secret(str(config))
    assert config.aws_secret_access_key == AWS_SECRET_KEY
    assert config.aws_session_token == AWS_SESSION_TOKEN


def test_pigment_settings_repr_hides_key(monkeypatch):
    use_pigment(monkeypatch, "https://pigment.example")

    assert_no_secret(repr(PigmentHook().settings))


def test_trigger_kwargs_hold_no_secret(secret_connections, monkeypatch):
    use_pigment(monkeypatch, "https://pigment.example")
    statement_trigger = RedshiftStatementTrigger(statement_id="s-1", redshift_conn_id="pigment_redshift_default")
    import_trigger = PigmentImportTrigger(
        import_id="i-1", configuration_id=LINE_ITEMS_CONFIGURATION_ID, pigment_conn_id="pigment_default"
    )

    for trigger in (statement_trigger, import_trigger):
        classpath, kwargs = trigger.serialize()
        assert_no_secret(f"{classpath} {json.dumps(kwargs, default=str)}")
        assert_no_secret(repr(trigger))


def test_echoed_key_redacted_from_error(monkeypatch, tmp_path):
    # A server that echoes the request's Authorization header in its error body.
    server = serve(401, {"Content-Type": "text/plain"}, f"rejected Authorization: Bearer {PIGMENT_KEY}".encode())
    use_pigment(monkeypatch, server.url)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("a\n1\n")
    try:
        with pytest.raises(PigmentRequestError) as raised:
            PigmentHook().push_csv(LINE_ITEMS_CONFIGURATION_ID, csv_path)
    finally:
        server.shutdown()
        server.server_close()

    assert server.seen[0]["authorization"] == f"Bearer {PIGMENT_KEY}"
    assert "rejected Authorization: Bearer" in str(raised.value)
    assert_no_secret(str(raised.value))
    assert_no_secret(raised.value.body)
