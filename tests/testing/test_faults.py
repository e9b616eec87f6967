"""Fault injection in both emulators, through real clients and through the admin endpoints."""

from __future__ import annotations

from pathlib import Path

import botocore.exceptions
import httpx
import pytest

from airflow_pigment_redshift.testing.faults import FaultRule
from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration, PigmentEmulator
from tests.testing.conftest import make_redshift_client

CONFIGURATION_ID = "0b7d6a8e-3f51-4c2a-9e1d-7a5b4c3d2e1f"
KEY = "test-import-key"


def test_rule_rejects_unknown_fault():
    with pytest.raises(ValueError, match="Invalid fault 'explode'"):
        FaultRule("push", "explode")


def test_rule_selects_listed_and_nth_calls():
    from airflow_pigment_redshift.testing.faults import FaultInjector

    injector = FaultInjector([FaultRule("DescribeStatement", "error", calls=[2], every=3)])
    fired = [injector.fault_for("DescribeStatement", {}) is not None for _ in range(6)]
    assert fired == [False, True, True, False, False, True]
    assert injector.fault_for("ExecuteStatement", {}) is None
    assert [entry["call"] for entry in injector.injected] == [2, 3, 6]


def test_rule_times_and_match():
    from airflow_pigment_redshift.testing.faults import FaultInjector

    injector = FaultInjector([FaultRule("*", "error", times=1, match={"Id": "a"})])
    assert injector.fault_for("DescribeStatement", {"Id": "b"}) is None
    assert injector.fault_for("DescribeStatement", {"Id": "a"}) is not None
    assert injector.fault_for("DescribeStatement", {"Id": "a"}) is None


def test_data_api_error_fault(make_redshift_emulator, aws_isolation):
    emulator = make_redshift_emulator()
    client = make_redshift_client(emulator)
    emulator.faults.add(FaultRule("ExecuteStatement", "error", code="ActiveStatementsExceededException", status=400, times=1))
    with pytest.raises(client.exceptions.ActiveStatementsExceededException):
        client.execute_statement(ClusterIdentifier="c1", Database="dev", Sql="select 1")
    assert emulator.statements == []
    statement_id = client.execute_statement(ClusterIdentifier="c1", Database="dev", Sql="select 1")["Id"]
    assert emulator.statement(statement_id)["sql"] == "select 1"


def test_data_api_drop_and_override(make_redshift_emulator, aws_isolation):
    emulator = make_redshift_emulator()
    client = make_redshift_client(emulator)
    statement_id = client.execute_statement(ClusterIdentifier="c1", Database="dev", Sql="select 1")["Id"]
    emulator.wait_for_status(statement_id, "FINISHED")
    emulator.faults.add(FaultRule("DescribeStatement", "drop_before", calls=[1], match={"Id": statement_id}))
    emulator.faults.add(FaultRule("DescribeStatement", "override", fields={"Status": "ABORTED"}))
    # botocore retries the dropped connection, and the retry gets the overridden status.
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED"
    assert [entry["fault"] for entry in emulator.faults.injected] == ["drop_before", "override"]


def test_data_api_admin_endpoint(make_redshift_emulator, aws_isolation):
    emulator = make_redshift_emulator()
    client = make_redshift_client(emulator)
    created = httpx.post(
        f"{emulator.url}/_emulator/faults",
        json={"target": "ListStatements", "fault": "error", "code": "ThrottlingException", "status": 400},
    )
    assert created.status_code == 201
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        client.list_statements()
    assert httpx.get(f"{emulator.url}/_emulator/faults").json()[0]["injected"] >= 1
    assert httpx.delete(f"{emulator.url}/_emulator/faults").status_code == 200
    assert client.list_statements()["Statements"] == []
    invalid = httpx.post(f"{emulator.url}/_emulator/faults", json={"target": "x", "fault": "nope"})
    assert invalid.status_code == 400


@pytest.fixture
def pigment(tmp_path: Path):
    configuration = ImportConfiguration(
        id=CONFIGURATION_ID, name="Faults", block_name="Faults", block_type="List", expected_header=["a"]
    )
    with PigmentEmulator(tmp_path, api_keys=[KEY], configurations=[configuration]) as emulator:
        yield emulator


def _push(emulator: PigmentEmulator) -> httpx.Response:
    return httpx.post(
        f"{emulator.url}/api/v1/import/push/csv",
        params={"configurationId": CONFIGURATION_ID},
        content=b"a\n1\n",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "text/csv"},
    )


def test_pigment_error_fault_creates_no_import(pigment):
    pigment.faults.add(FaultRule("push", "error", status=503, message="unavailable", times=1))
    failed = _push(pigment)
    assert (failed.status_code, failed.text) == (503, "unavailable")
    assert _push(pigment).status_code == 200
    pigment.wait_for_idle()
    assert len(pigment.ledger()) == 1


def test_pigment_drop_after_creates_import(pigment):
    pigment.faults.add(FaultRule("push", "drop_after", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        _push(pigment)
    pigment.wait_for_idle()
    assert len(pigment.ledger()) == 1


def test_pigment_drop_before_creates_no_import(pigment):
    pigment.faults.add(FaultRule("push", "drop_before", times=1))
    with pytest.raises(httpx.TransportError):
        _push(pigment)
    pigment.wait_for_idle()
    assert pigment.ledger() == []


def test_pigment_override_through_admin_endpoint(pigment):
    import_id = _push(pigment).json()["importId"]
    rule = {"target": "status", "fault": "override", "fields": {"importStatus": "Failed"}, "match": {"importid": import_id}}
    assert httpx.post(f"{pigment.url}/_emulator/faults", json=rule).status_code == 201
    status = httpx.get(
        f"{pigment.url}/api/v1/import/{import_id}/status", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert status.json()["importStatus"] == "Failed"
    assert httpx.get(f"{pigment.url}/_emulator/faults").json()[0]["injected"] == 1
    assert httpx.delete(f"{pigment.url}/_emulator/faults").json() == []
