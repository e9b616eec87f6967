from __future__ import annotations

import json

import pytest

from airflow_pigment_redshift.exceptions import PigmentRequestError
from airflow_pigment_redshift.hooks.pigment import PigmentHook, summary_counts
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID, LINE_ITEMS_HEADER, PIGMENT_API_KEY

UNKNOWN_CONFIGURATION_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def pigment_connection(monkeypatch, pigment_emulator):
    connection = {"conn_type": "pigment", "password": PIGMENT_API_KEY, "extra": {"base_url": pigment_emulator.url}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))
    return pigment_emulator


@pytest.fixture
def line_items_csv(tmp_path):
    path = tmp_path / "line_items.csv"
    rows = [",".join(LINE_ITEMS_HEADER)]
    rows += [f"{n},1,1995-03-01,Customer#{n},FRANCE,part {n},1.00,10.00,0.05,9.5000" for n in range(1, 51)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_push_streams_file_unchanged(pigment_connection, line_items_csv):
    hook = PigmentHook()

    import_id = hook.push_csv(LINE_ITEMS_CONFIGURATION_ID, line_items_csv)
    report = hook.wait_for_import(import_id, timeout=30, poll_interval=0.05)

    assert pigment_connection.received_file(import_id).read_bytes() == line_items_csv.read_bytes()
    assert report["importStatus"] == "Completed"
    assert summary_counts(report)["inserted"] == 50


def test_ledger_records_push(pigment_connection, line_items_csv):
    hook = PigmentHook()

    import_id = hook.push_csv(LINE_ITEMS_CONFIGURATION_ID, line_items_csv)
    hook.wait_for_import(import_id, timeout=30, poll_interval=0.05)

    [entry] = pigment_connection.ledger()
    assert entry["import_id"] == import_id
    assert entry["configuration_id"] == LINE_ITEMS_CONFIGURATION_ID
    assert entry["rows"] == 50
    assert entry["bytes"] == line_items_csv.stat().st_size


def test_status_first_in_progress(pigment_connection, line_items_csv):
    hook = PigmentHook()
    import_id = hook.push_csv(LINE_ITEMS_CONFIGURATION_ID, line_items_csv)

    first = hook.get_import_status(import_id)

    assert first["importStatus"] == "InProgress"
    assert first["importId"] == import_id


def test_wrong_key_rejected_without_leaking(monkeypatch, pigment_emulator, line_items_csv):
    connection = {"conn_type": "pigment", "password": "wrong-key-123", "extra": {"base_url": pigment_emulator.url}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))

    with pytest.raises(PigmentRequestError, match="HTTP 401") as raised:
        PigmentHook().push_csv(LINE_ITEMS_CONFIGURATION_ID, line_items_csv)

    assert raised.value.status_code == 401
    assert "wrong-key-123" not in str(raised.value)
    assert pigment_emulator.ledger() == []


def test_unknown_configuration_named(pigment_connection, line_items_csv):
    with pytest.raises(PigmentRequestError, match=UNKNOWN_CONFIGURATION_ID) as raised:
        PigmentHook().push_csv(UNKNOWN_CONFIGURATION_ID, line_items_csv)

    assert raised.value.status_code == 404
    assert raised.value.configuration_id == UNKNOWN_CONFIGURATION_ID


def test_missing_key_explained(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps({"conn_type": "pigment"}))

    with pytest.raises(Exception, match="Import API key.*is empty"):
        PigmentHook().settings


def test_settings_repr_hides_key(pigment_connection):
    settings = PigmentHook().settings

    assert PIGMENT_API_KEY not in repr(settings)
    assert settings.base_url == pigment_connection.url


def test_empty_verify_field_means_verified(monkeypatch, pigment_emulator):
    connection = {
        "conn_type": "pigment",
        "password": PIGMENT_API_KEY,
        "extra": {"base_url": pigment_emulator.url, "verify": ""},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))

    assert PigmentHook().settings.verify is True
