"""The Test button of both connection types, against the emulators configured to fail."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta

import pytest

from airflow_pigment_redshift.hooks.pigment import STATUS_PATH, PigmentHook
from airflow_pigment_redshift.hooks.redshift_data import PROBE_SQL, RedshiftDataApiHook
from airflow_pigment_redshift.testing.redshift_data import AccessSettings
from tests.conftest import PIGMENT_API_KEY, set_connections

CALLER = "arn:aws:iam::123456789012:user/pigment_aws_user"


@pytest.fixture
def start_redshift(redshift_emulator_factory, pigment_emulator, monkeypatch):
    """Start a Redshift emulator with access settings and point the default connections at it."""

    def start(**access):
        emulator = redshift_emulator_factory(access=AccessSettings(caller_arn=CALLER, **access))
        set_connections(monkeypatch, emulator, pigment_emulator)
        return emulator

    return start


def executed(emulator):
    return [entry["request"] for entry in emulator.requests if entry["operation"] == "ExecuteStatement"]


def test_redshift_success_reports_target(start_redshift):
    emulator = start_redshift()

    ok, message = RedshiftDataApiHook().test_connection()

    assert ok, message
    assert "cluster test-cluster" in message
    assert "region eu-west-1" in message
    assert "database dev" in message
    assert "database user pigment_db_user" in message
    assert "access key ...SKEY" in message
    assert "test-secret-access-key" not in message
    assert executed(emulator)[0]["Sql"] == PROBE_SQL
    assert executed(emulator)[0]["DbUser"] == "pigment_db_user"


def test_missing_get_cluster_credentials_prints_statement(start_redshift):
    start_redshift(denied_actions=frozenset({"redshift:GetClusterCredentials"}))

    ok, message = RedshiftDataApiHook().test_connection()

    assert not ok
    assert f"IAM identity {CALLER} lacks the permission redshift:GetClusterCredentials" in message
    statement = json.loads(message[message.index("{"):])
    assert statement["Action"] == ["redshift:GetClusterCredentials"]
    assert statement["Resource"] == "arn:aws:redshift:eu-west-1:123456789012:dbuser:test-cluster/pigment_db_user"


def test_missing_execute_statement_prints_statement(start_redshift):
    start_redshift(denied_actions=frozenset({"redshift-data:ExecuteStatement"}))

    ok, message = RedshiftDataApiHook().test_connection()

    assert not ok
    statement = json.loads(message[message.index("{"):])
    assert statement["Action"] == ["redshift-data:ExecuteStatement"]
    assert statement["Resource"] == "arn:aws:redshift:eu-west-1:123456789012:cluster:test-cluster"


def test_unknown_cluster_named_with_region(start_redshift):
    emulator = start_redshift(clusters=frozenset({"other-cluster"}))

    ok, message = RedshiftDataApiHook().test_connection()

    assert not ok
    assert "Cluster 'test-cluster' was not found in region eu-west-1" in message
    assert "'Redshift cluster name' and 'Region'" in message
    assert len(executed(emulator)) == 1


def test_unknown_workgroup_named(start_redshift, monkeypatch):
    emulator = start_redshift(workgroups=frozenset({"analytics-wg"}))
    connection = {
        "conn_type": "pigment_redshift",
        "login": "AKIATESTACCESSKEY",
        "password": "test-secret-access-key",
        "extra": {"region_name": "eu-west-1", "workgroup_name": "pigment-wg", "database": "dev",
                  "endpoint_url": emulator.url},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SERVERLESS", json.dumps(connection))

    ok, message = RedshiftDataApiHook("serverless").test_connection()

    assert not ok
    assert "Workgroup 'pigment-wg' was not found in region eu-west-1" in message
    assert executed(emulator)[0]["WorkgroupName"] == "pigment-wg"
    assert "DbUser" not in executed(emulator)[0]


def test_missing_database_named(start_redshift, monkeypatch):
    start_redshift()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT",
        json.dumps({**json.loads(_default_connection()), "extra": {**_default_extra(), "database": "analytics"}}),
    )

    ok, message = RedshiftDataApiHook().test_connection()

    assert not ok
    assert "Database 'analytics' does not exist on cluster test-cluster" in message
    assert "'Default database name'" in message


def test_database_user_without_connect_gets_grant(start_redshift):
    start_redshift(database_connect={"pigment_db_user": ["analytics"]})

    ok, message = RedshiftDataApiHook().test_connection()

    assert not ok
    assert "may not connect to database dev" in message
    assert "GRANT CONNECT ON DATABASE dev TO pigment_db_user;" in message


def test_database_user_without_select_gets_grant(start_redshift):
    emulator = start_redshift(table_select={"pigment_db_user": ["tpch.orders"]})
    hook = RedshiftDataApiHook()

    ok, message = hook.test_connection(probe_sql="SELECT count(*) FROM tpch.lineitem")
    allowed, _ = hook.test_connection(probe_sql="SELECT count(*) FROM tpch.orders")

    assert not ok
    assert "may not read table tpch.lineitem" in message
    assert "GRANT SELECT ON TABLE tpch.lineitem TO pigment_db_user;" in message
    assert allowed
    assert [request["Sql"] for request in executed(emulator)][-1] == "SELECT count(*) FROM tpch.orders"


def test_invalid_connection_reported_without_request(start_redshift, monkeypatch):
    emulator = start_redshift()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT",
        json.dumps({**json.loads(_default_connection()), "extra": {**_default_extra(), "workgroup_name": "wg-one"}}),
    )

    ok, message = RedshiftDataApiHook().test_connection()

    assert not ok
    assert "both 'Redshift cluster name'" in message
    assert executed(emulator) == []


def _default_connection() -> str:
    return os.environ["AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT"]


def _default_extra() -> dict:
    return json.loads(_default_connection())["extra"]


@pytest.fixture
def pigment_connection(pigment_emulator, monkeypatch):
    def configure(password: str = PIGMENT_API_KEY, **extra):
        connection = {"conn_type": "pigment", "password": password, "extra": {"base_url": pigment_emulator.url, **extra}}
        monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))
        return pigment_emulator

    return configure


def test_pigment_key_accepted(pigment_connection):
    emulator = pigment_connection()

    ok, message = PigmentHook().test_connection()

    assert ok, message
    assert "accepted the Import API key" in message
    assert "Key expiry date unknown" in message
    assert emulator.ledger() == []


def test_pigment_key_rejected(pigment_connection):
    pigment_connection(password="wrong-key")

    ok, message = PigmentHook().test_connection()

    assert not ok
    assert "rejected the Import API key (HTTP 401)" in message
    assert "wrong-key" not in message


def test_pigment_key_expiring_soon_warns(pigment_connection):
    expires = date.today() + timedelta(days=5)
    pigment_connection(key_expires_on=expires.isoformat())

    ok, message = PigmentHook().test_connection()

    assert ok
    assert f"WARNING: the key expires on {expires.isoformat()}, in 5 day(s)" in message


def test_pigment_key_expired_fails(pigment_connection):
    pigment_connection(key_expires_on=date.today().isoformat())

    ok, message = PigmentHook().test_connection()

    assert not ok
    assert f"expired on {date.today().isoformat()}" in message


def test_pigment_unreachable_explained(monkeypatch):
    connection = {"conn_type": "pigment", "password": "pgm-key", "extra": {"base_url": "http://127.0.0.1:9"}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))

    ok, message = PigmentHook().test_connection()

    assert not ok
    assert "Could not reach http://127.0.0.1:9" in message


def test_pigment_invalid_connection_reported(monkeypatch):
    connection = {"conn_type": "pigment", "password": "pgm-key", "extra": {"base_url": "http://pigment.example.com"}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))

    ok, message = PigmentHook().test_connection()

    assert not ok
    assert "uses http:// to a non-loopback host" in message


def test_status_path_probe_uses_random_import_id():
    assert "{import_id}" in STATUS_PATH


def test_airflow_test_path_runs_both_hooks(start_redshift, pigment_connection, monkeypatch):
    """Airflow's Test button calls Connection.test_connection(), which builds the hook by connection type."""
    from airflow.models.connection import Connection

    start_redshift()
    pigment_connection()
    for env_name, conn_id in (("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", "redshift_probe"),
                              ("AIRFLOW_CONN_PIGMENT_DEFAULT", "pigment_probe")):
        stored = json.loads(os.environ[env_name])
        connection = Connection(
            conn_id=conn_id,
            conn_type=stored["conn_type"],
            login=stored.get("login"),
            password=stored.get("password"),
            extra=json.dumps(stored["extra"]),
        )
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection.as_json())

        ok, message = connection.test_connection()

        assert ok, message
