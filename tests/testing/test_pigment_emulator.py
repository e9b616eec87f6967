"""Tests of the local Pigment import API emulator, driven over HTTP with httpx like a client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_pigment_redshift.testing.pigment_emulator import (
    ImportConfiguration,
    PigmentEmulator,
)

API_KEY = "test-import-key"
CSV_HEADERS = {"Content-Type": "text/csv"}

ORDERS_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a01"
CUSTOMERS_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a02"
PRODUCTS_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a03"
SNAPSHOT_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a04"
STRICT_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a05"
SEMICOLON_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a06"
REVENUE_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9a07"
UNKNOWN_ID = "0b7f1c6e-5d1a-4f57-9a0e-3c1f3e2d9aff"

ORDERS_HEADER = ["order_id", "amount", "order_date"]
ORDERS_BODY = b"order_id,amount,order_date\n1,10.5,2024-01-31\n2,-3,2024-02-01\n3,7,2024-02-02\n"


def make_configurations() -> list[ImportConfiguration]:
    return [
        ImportConfiguration(
            id=ORDERS_ID,
            name="Orders push",
            block_name="Orders",
            expected_header=ORDERS_HEADER,
            column_types={"amount": "number", "order_date": "date"},
        ),
        ImportConfiguration(
            id=CUSTOMERS_ID,
            name="Customers push",
            block_name="Customers",
            expected_header=["customer_id", "name"],
            unique_key="customer_id",
        ),
        ImportConfiguration(
            id=PRODUCTS_ID,
            name="Products full refresh",
            block_name="Products",
            list_kind="dimension",
            unique_key="code",
            clear_before_import=True,
        ),
        ImportConfiguration(
            id=SNAPSHOT_ID,
            name="Snapshot reload",
            block_name="Snapshot",
            clear_before_import=True,
        ),
        ImportConfiguration(
            id=STRICT_ID,
            name="Strict header",
            block_name="Strict",
            expected_header=["a", "b"],
            header_mismatch="reject",
        ),
        ImportConfiguration(
            id=SEMICOLON_ID,
            name="Semicolon file",
            block_name="Semicolon",
            delimiter=";",
            quote_char="'",
        ),
        ImportConfiguration(
            id=REVENUE_ID,
            name="Revenue metric",
            block_name="Revenue",
            block_type="Metric",
            expected_header=["month", "revenue"],
        ),
    ]


class FakeClock:
    """Clock whose time only moves when a test advances it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[Callable[..., PigmentEmulator]]:
    """Start emulators with the test configurations, and stop every one after the test."""
    started: list[PigmentEmulator] = []

    def start(**options: Any) -> PigmentEmulator:
        options.setdefault("configurations", make_configurations())
        emulator = PigmentEmulator(tmp_path / f"pigment-{len(started)}", **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: Callable[..., PigmentEmulator]) -> PigmentEmulator:
    return start_emulator()


@pytest.fixture
def client(emulator: PigmentEmulator) -> Iterator[httpx.Client]:
    with make_client(emulator) as http_client:
        yield http_client


def make_client(emulator: PigmentEmulator, api_key: str | None = API_KEY) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else {}
    return httpx.Client(base_url=emulator.url, headers=headers, trust_env=False, timeout=30.0)


def push(
    client: httpx.Client,
    configuration_id: str,
    body: Any,
    *,
    path: str = "/api/v1/import/push/csv",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        path,
        params={"configurationId": configuration_id},
        content=body,
        headers=headers if headers is not None else CSV_HEADERS,
    )


def push_import(client: httpx.Client, configuration_id: str, body: Any) -> str:
    response = push(client, configuration_id, body)
    assert response.status_code == 200, response.text
    return response.json()["importId"]


def get_status(client: httpx.Client, import_id: str, *, detailed: bool = True) -> dict[str, Any]:
    params = {"includedDetailedReport": "true"} if detailed else {}
    response = client.get(f"/api/v1/import/{import_id}/status", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def wait_final(client: httpx.Client, import_id: str, *, detailed: bool = True) -> dict[str, Any]:
    for _attempt in range(200):
        report = get_status(client, import_id, detailed=detailed)
        if report["importStatus"] != "InProgress":
            return report
        time.sleep(0.02)
    pytest.fail(f"import {import_id} is still InProgress after 200 polls")


def summary(report: dict[str, Any]) -> dict[str, int]:
    return report["detailedReport"]["summary"]


# Authentication and routing.


def test_push_without_key(emulator: PigmentEmulator) -> None:
    with make_client(emulator, api_key=None) as anonymous:
        response = push(anonymous, ORDERS_ID, ORDERS_BODY)

    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["Content-Type"].startswith("text/plain")
    assert emulator.ledger() == []


def test_push_wrong_key(emulator: PigmentEmulator) -> None:
    with make_client(emulator, api_key="not-a-key") as intruder:
        response = push(intruder, ORDERS_ID, ORDERS_BODY)

    assert response.status_code == 401
    assert response.content == b""


def test_status_without_key(emulator: PigmentEmulator, client: httpx.Client) -> None:
    import_id = push_import(client, ORDERS_ID, ORDERS_BODY)

    with make_client(emulator, api_key=None) as anonymous:
        response = anonymous.get(f"/api/v1/import/{import_id}/status")

    assert response.status_code == 401


def test_basic_scheme_rejected(emulator: PigmentEmulator) -> None:
    with make_client(emulator, api_key=None) as basic_client:
        response = push(
            basic_client,
            ORDERS_ID,
            ORDERS_BODY,
            headers={**CSV_HEADERS, "Authorization": f"Basic {API_KEY}"},
        )

    assert response.status_code == 401


def test_error_body_configurable(start_emulator: Callable[..., PigmentEmulator]) -> None:
    emulator = start_emulator(error_bodies={"unauthorized": "Unauthorized"})

    with make_client(emulator, api_key=None) as anonymous:
        response = push(anonymous, ORDERS_ID, ORDERS_BODY)

    assert response.status_code == 401
    assert response.text == "Unauthorized"


def test_error_body_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown error kind"):
        PigmentEmulator(tmp_path, error_bodies={"teapot": "short and stout"})


def test_push_unknown_configuration(client: httpx.Client) -> None:
    response = push(client, UNKNOWN_ID, ORDERS_BODY)

    assert response.status_code == 404
    assert response.content == b""


def test_push_missing_configuration_id(client: httpx.Client) -> None:
    response = client.post("/api/v1/import/push/csv", content=ORDERS_BODY, headers=CSV_HEADERS)

    assert response.status_code == 400


def test_push_invalid_configuration_id(client: httpx.Client) -> None:
    response = push(client, "not-a-uuid", ORDERS_BODY)

    assert response.status_code == 400


def test_push_multipart_rejected(emulator: PigmentEmulator, client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/import/push/csv",
        params={"configurationId": ORDERS_ID},
        files={"file": ("orders.csv", ORDERS_BODY, "text/csv")},
    )

    assert response.status_code == 400
    assert emulator.ledger() == []


def test_push_octet_stream_accepted(client: httpx.Client) -> None:
    response = push(
        client, ORDERS_ID, ORDERS_BODY, headers={"Content-Type": "application/octet-stream"}
    )

    assert response.status_code == 200


def test_unknown_path_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/nothing")

    assert response.status_code == 404


def test_wrong_method_405(client: httpx.Client) -> None:
    response = client.get("/api/v1/import/push/csv", params={"configurationId": ORDERS_ID})

    assert response.status_code == 405


def test_status_unknown_import(client: httpx.Client) -> None:
    response = client.get(f"/api/v1/import/{UNKNOWN_ID}/status")

    assert response.status_code == 404
    assert response.text == "Status with the specified importId was not found"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_trigger_csv_configuration(client: httpx.Client) -> None:
    response = client.post("/api/v1/import/trigger", params={"configurationId": ORDERS_ID})

    assert response.status_code == 400


def test_trigger_unknown_configuration(client: httpx.Client) -> None:
    response = client.post("/api/v1/import/trigger", params={"configurationId": UNKNOWN_ID})

    assert response.status_code == 404


def test_keep_alive_reuses_connection(client: httpx.Client) -> None:
    local_addresses = set()
    for _request in range(3):
        response = client.get(f"/api/v1/import/{UNKNOWN_ID}/status")
        local_addresses.add(response.extensions["network_stream"].get_extra_info("client_addr"))

    assert len(local_addresses) == 1


def test_host_must_be_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host must be 127.0.0.1"):
        PigmentEmulator(tmp_path, host="0.0.0.0")


# Import lifecycle and reports.


def test_push_returns_import_id(client: httpx.Client) -> None:
    response = push(client, ORDERS_ID, ORDERS_BODY)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert list(response.json()) == ["importId"]


def test_status_in_progress_then_completed(
    emulator: PigmentEmulator, client: httpx.Client
) -> None:
    import_id = push_import(client, ORDERS_ID, ORDERS_BODY)
    emulator.wait_for_idle()

    first = get_status(client, import_id)
    second = get_status(client, import_id)

    assert first["importId"] == import_id
    assert first["importStatus"] == "InProgress"
    assert first["createdAt"] is not None
    assert first["completedAt"] is None
    assert first["detailedReport"] is None
    assert second["importStatus"] == "Completed"
    assert second["createdAt"] == first["createdAt"]
    assert second["completedAt"] is not None
    assert second["errorsDetails"] is None


def test_completed_report_counts(client: httpx.Client) -> None:
    import_id = push_import(client, ORDERS_ID, ORDERS_BODY)

    report = wait_final(client, import_id)

    detailed = report["detailedReport"]
    assert detailed["blockType"] == "List"
    assert detailed["summary"] == {
        "insertedCount": 3,
        "updatedCount": 0,
        "deletedCount": 0,
        "skippedCount": 0,
    }
    block = detailed["impactedBlocks"][0]
    assert len(detailed["impactedBlocks"]) == 1
    assert block["scenarioId"] is None
    assert block["insertedCount"] == 3
    assert block["skippedData"] == []
    assert detailed["autoCreatedDimensionModalities"] == []


def test_in_progress_polls_zero(start_emulator: Callable[..., PigmentEmulator]) -> None:
    emulator = start_emulator(in_progress_polls=0)
    with make_client(emulator) as client:
        import_id = push_import(client, ORDERS_ID, ORDERS_BODY)
        emulator.wait_for_idle()

        report = get_status(client, import_id)

    assert report["importStatus"] == "Completed"


def test_processing_seconds_fake_clock(start_emulator: Callable[..., PigmentEmulator]) -> None:
    clock = FakeClock()
    emulator = start_emulator(processing_seconds=30.0, in_progress_polls=0, now=clock)
    with make_client(emulator) as client:
        import_id = push_import(client, ORDERS_ID, ORDERS_BODY)
        with pytest.raises(TimeoutError):
            emulator.wait_for_idle(timeout=0.3)
        before = get_status(client, import_id)

        clock.advance(30.0)
        emulator.wait_for_idle()
        after = get_status(client, import_id)

    assert before["importStatus"] == "InProgress"
    assert emulator.ledger()[0]["status"] == "Completed"
    assert after["importStatus"] == "Completed"
    assert after["createdAt"] == "2023-11-14T22:13:20.000000Z"
    assert after["completedAt"] == "2023-11-14T22:13:50.000000Z"


def test_detailed_report_only_when_requested(
    emulator: PigmentEmulator, client: httpx.Client
) -> None:
    import_id = push_import(client, ORDERS_ID, ORDERS_BODY)
    wait_final(client, import_id)

    plain = get_status(client, import_id, detailed=False)
    explicit_false = client.get(
        f"/api/v1/import/{import_id}/status", params={"includedDetailedReport": "false"}
    ).json()
    detailed = get_status(client, import_id, detailed=True)

    assert plain["importStatus"] == "Completed"
    assert plain["detailedReport"] is None
    assert explicit_false["detailedReport"] is None
    assert detailed["detailedReport"]["summary"]["insertedCount"] == 3


def test_detailed_flag_invalid(client: httpx.Client) -> None:
    import_id = push_import(client, ORDERS_ID, ORDERS_BODY)

    response = client.get(
        f"/api/v1/import/{import_id}/status", params={"includedDetailedReport": "yes"}
    )

    assert response.status_code == 400


def test_legacy_push_and_status(emulator: PigmentEmulator, client: httpx.Client) -> None:
    response = push(client, ORDERS_ID, ORDERS_BODY, path="/api/import/push/csv")
    import_id = response.json()["importId"]
    emulator.wait_for_idle()

    statuses = [
        client.get(
            f"/api/import/{import_id}/status", params={"includedDetailedReport": "true"}
        ).json()
        for _poll in range(2)
    ]

    assert response.status_code == 200
    assert statuses[-1]["importStatus"] == "Completed"
    assert statuses[-1]["detailedReport"] is None


def test_metric_block_type(client: httpx.Client) -> None:
    import_id = push_import(client, REVENUE_ID, b"month,revenue\n2024-01,100\n")

    report = wait_final(client, import_id)

    assert report["detailedReport"]["blockType"] == "Metric"


# Ledger and received files.


def test_ledger_matches_push(emulator: PigmentEmulator, client: httpx.Client) -> None:
    import_id = push_import(client, ORDERS_ID, ORDERS_BODY)
    report = wait_final(client, import_id)

    [entry] = emulator.ledger()

    assert entry["import_id"] == import_id
    assert entry["configuration_id"] == ORDERS_ID
    assert entry["block_name"] == "Orders"
    assert entry["status"] == "Completed"
    assert entry["bytes"] == len(ORDERS_BODY)
    assert entry["rows"] == 3
    assert entry["inserted"] == 3
    assert entry["updated"] == 0
    assert entry["deleted"] == 0
    assert entry["skipped"] == 0
    assert entry["created_at"] == report["createdAt"]
    assert entry["completed_at"] == report["completedAt"]
    assert entry["file"] == f"files/{import_id}.csv"
    assert (emulator.data_dir / entry["file"]).stat().st_size == entry["bytes"]


def test_ledger_file_lines(emulator: PigmentEmulator, client: httpx.Client) -> None:
    push_import(client, ORDERS_ID, ORDERS_BODY)
    push_import(client, ORDERS_ID, ORDERS_BODY)
    emulator.wait_for_idle()

    lines = (emulator.data_dir / "imports.jsonl").read_text(encoding="utf-8").splitlines()

    assert len(lines) == 2
    assert [json.loads(line) for line in lines] == emulator.ledger()


def test_ledger_survives_restart(start_emulator: Callable[..., PigmentEmulator]) -> None:
    first = start_emulator()
    with make_client(first) as client:
        push_import(client, ORDERS_ID, ORDERS_BODY)
    first.wait_for_idle()
    first.stop()

    second = PigmentEmulator(first.data_dir, configurations=make_configurations())

    assert second.ledger() == first.ledger()


def test_admin_imports_endpoint(emulator: PigmentEmulator, client: httpx.Client) -> None:
    push_import(client, ORDERS_ID, ORDERS_BODY)
    emulator.wait_for_idle()

    response = httpx.get(f"{emulator.url}/_emulator/imports", trust_env=False)

    assert response.status_code == 200
    assert response.json() == emulator.ledger()


def test_received_file_identical(emulator: PigmentEmulator, client: httpx.Client) -> None:
    body = "order_id,amount,order_date\r\n1,\"1,5\",2024-01-31\r\n2,é,2024-01-31\r\n".encode()
    import_id = push_import(client, ORDERS_ID, body)
    emulator.wait_for_idle()

    assert emulator.received_file(import_id).read_bytes() == body
    assert emulator.received_header(import_id) == ORDERS_HEADER
    assert emulator.received_rows(import_id) == [
        ["1", "1,5", "2024-01-31"],
        ["2", "é", "2024-01-31"],
    ]


def test_received_file_unknown(emulator: PigmentEmulator) -> None:
    with pytest.raises(KeyError):
        emulator.received_file(UNKNOWN_ID)


def test_semicolon_single_quote(emulator: PigmentEmulator, client: httpx.Client) -> None:
    body = b"id;label\n1;'a;b'\n2;'it''s'\n"
    import_id = push_import(client, SEMICOLON_ID, body)

    report = wait_final(client, import_id)

    assert summary(report)["insertedCount"] == 2
    assert emulator.received_header(import_id) == ["id", "label"]
    assert emulator.received_rows(import_id) == [["1", "a;b"], ["2", "it's"]]


# Header checks and failures.


def test_header_mismatch_fails(emulator: PigmentEmulator, client: httpx.Client) -> None:
    import_id = push_import(client, ORDERS_ID, b"order_id,total,order_date\n1,2,2024-01-01\n")

    report = wait_final(client, import_id)

    assert report["importStatus"] == "Failed"
    assert report["completedAt"] is not None
    assert [error["name"] for error in report["errorsDetails"]] == ["HeaderMismatch"]
    assert "total" in report["errorsDetails"][0]["description"]
    assert emulator.ledger()[0]["status"] == "Failed"
    assert emulator.ledger()[0]["inserted"] == 0
    assert emulator.block_items("Orders") == 0


def test_header_mismatch_rejects(
    start_emulator: Callable[..., PigmentEmulator],
) -> None:
    emulator = start_emulator(imports_per_configuration_limit=1)
    with make_client(emulator) as client:
        rejected = push(client, STRICT_ID, b"a,c\n1,2\n")
        accepted = push(client, STRICT_ID, b"a,b\n1,2\n")
    emulator.wait_for_idle()

    assert rejected.status_code == 400
    assert rejected.content == b""
    assert accepted.status_code == 200
    assert len(emulator.ledger()) == 1
    assert len(list((emulator.data_dir / "files").iterdir())) == 1


def test_empty_body_fails(client: httpx.Client) -> None:
    import_id = push_import(client, ORDERS_ID, b"")

    report = wait_final(client, import_id)

    assert report["importStatus"] == "Failed"
    assert report["errorsDetails"][0]["name"] == "MissingHeader"


def test_undecodable_file_fails(emulator: PigmentEmulator, client: httpx.Client) -> None:
    body = b"order_id,amount,order_date\n1,2,2024-01-01\n2,\xff\xfe,2024-01-01\n"
    import_id = push_import(client, ORDERS_ID, body)

    report = wait_final(client, import_id)

    assert report["importStatus"] == "Failed"
    assert report["errorsDetails"][0]["name"] == "InvalidEncoding"
    assert emulator.ledger()[0]["bytes"] == len(body)
    assert emulator.block_items("Orders") == 0


def test_missing_unique_key_column_fails(client: httpx.Client) -> None:
    import_id = push_import(client, PRODUCTS_ID, b"name\nWidget\n")

    report = wait_final(client, import_id)

    assert report["importStatus"] == "Failed"
    assert report["errorsDetails"][0]["name"] == "MissingColumn"


def test_body_too_large(start_emulator: Callable[..., PigmentEmulator]) -> None:
    emulator = start_emulator(max_body_bytes=10)
    with make_client(emulator) as client:
        too_large = push(client, ORDERS_ID, ORDERS_BODY)
        next_request = client.get(f"/api/v1/import/{UNKNOWN_ID}/status")

    assert too_large.status_code == 400
    assert next_request.status_code == 404
    assert list((emulator.data_dir / "files").iterdir()) == []


# Skipped rows.


def test_parsing_errors_skipped(emulator: PigmentEmulator, client: httpx.Client) -> None:
    body = (
        b"order_id,amount,order_date\n"
        b"1,10,2024-01-01\n"
        b"2,1 000,2024-01-01\n"
        b"3,12abc,2024-01-01\n"
        b"4,5,31/01/2024\n"
        b"5,5,2024-02-30\n"
        b"6,5\n"
        b"7,,\n"
    )
    import_id = push_import(client, ORDERS_ID, body)

    report = wait_final(client, import_id)

    assert report["importStatus"] == "Completed"
    assert summary(report)["insertedCount"] == 2
    assert summary(report)["skippedCount"] == 5
    skipped = {
        entry["sourceColumnName"]: entry
        for entry in report["detailedReport"]["impactedBlocks"][0]["skippedData"]
    }
    assert set(skipped) == {"amount", "order_date", None}
    assert skipped["amount"]["reason"] == "ParsingError"
    assert skipped["amount"]["count"] == 2
    assert skipped["amount"]["samples"] == ["1 000", "12abc"]
    assert skipped["order_date"]["count"] == 2
    assert skipped["order_date"]["samples"] == ["31/01/2024", "2024-02-30"]
    assert skipped[None]["reason"] == "ParsingError"
    assert skipped[None]["count"] == 1
    assert skipped[None]["samples"] == ["6,5"]
    assert emulator.ledger()[0]["skipped"] == 5
    assert emulator.ledger()[0]["rows"] == 7


def test_samples_capped_at_five(client: httpx.Client) -> None:
    rows = b"".join(b"%d,bad%d,2024-01-01\n" % (index, index) for index in range(8))
    import_id = push_import(client, ORDERS_ID, b"order_id,amount,order_date\n" + rows)

    report = wait_final(client, import_id)

    [entry] = report["detailedReport"]["impactedBlocks"][0]["skippedData"]
    assert entry["count"] == 8
    assert entry["samples"] == ["bad0", "bad1", "bad2", "bad3", "bad4"]


def test_empty_unique_key_skipped(client: httpx.Client) -> None:
    import_id = push_import(client, CUSTOMERS_ID, b"customer_id,name\n,Nobody\nc1,Ann\n")

    report = wait_final(client, import_id)

    [entry] = report["detailedReport"]["impactedBlocks"][0]["skippedData"]
    assert summary(report)["insertedCount"] == 1
    assert entry["sourceColumnName"] == "customer_id"
    assert entry["samples"] == [",Nobody"]


# Block state across imports.


def test_keyed_insert_then_update(emulator: PigmentEmulator, client: httpx.Client) -> None:
    first = push_import(client, CUSTOMERS_ID, b"customer_id,name\nc1,Ann\nc2,Bob\n")
    first_report = wait_final(client, first)
    second = push_import(client, CUSTOMERS_ID, b"customer_id,name\nc2,Bobby\nc3,Cy\n")
    second_report = wait_final(client, second)

    assert summary(first_report)["insertedCount"] == 2
    assert summary(first_report)["updatedCount"] == 0
    assert summary(second_report)["insertedCount"] == 1
    assert summary(second_report)["updatedCount"] == 1
    assert emulator.block_items("Customers") == {
        "c1": {"customer_id": "c1", "name": "Ann"},
        "c2": {"customer_id": "c2", "name": "Bobby"},
        "c3": {"customer_id": "c3", "name": "Cy"},
    }
    assert emulator.ledger()[1]["updated"] == 1


def test_keyed_repeated_key_in_file(emulator: PigmentEmulator, client: httpx.Client) -> None:
    import_id = push_import(client, CUSTOMERS_ID, b"customer_id,name\nc1,Ann\nc1,Anne\n")

    report = wait_final(client, import_id)

    assert summary(report)["insertedCount"] == 1
    assert summary(report)["updatedCount"] == 1
    assert emulator.block_items("Customers") == {"c1": {"customer_id": "c1", "name": "Anne"}}


def test_append_only_duplicates(emulator: PigmentEmulator, client: httpx.Client) -> None:
    first = push_import(client, ORDERS_ID, ORDERS_BODY)
    second = push_import(client, ORDERS_ID, ORDERS_BODY)
    emulator.wait_for_idle()

    assert emulator.block_items("Orders") == 6
    assert emulator.block_count("Orders") == 6
    assert emulator.block_files("Orders") == [
        emulator.received_file(first),
        emulator.received_file(second),
    ]
    assert [entry["inserted"] for entry in emulator.ledger()] == [3, 3]


def test_clear_before_import_append_only(
    emulator: PigmentEmulator, client: httpx.Client
) -> None:
    first = push_import(client, SNAPSHOT_ID, b"x\n1\n2\n3\n")
    wait_final(client, first)
    second = push_import(client, SNAPSHOT_ID, b"x\n4\n5\n")

    report = wait_final(client, second)

    assert summary(report)["deletedCount"] == 3
    assert summary(report)["insertedCount"] == 2
    assert emulator.block_items("Snapshot") == 2
    assert emulator.block_files("Snapshot") == [emulator.received_file(second)]


def test_clear_before_import_keyed(emulator: PigmentEmulator, client: httpx.Client) -> None:
    first = push_import(client, PRODUCTS_ID, b"code,name\na,Apple\nb,Banana\nc,Cherry\n")
    wait_final(client, first)
    second = push_import(client, PRODUCTS_ID, b"code,name\nb,Blueberry\nd,Date\n")

    report = wait_final(client, second)

    assert summary(report)["deletedCount"] == 2
    assert summary(report)["updatedCount"] == 1
    assert summary(report)["insertedCount"] == 1
    assert sorted(emulator.block_items("Products")) == ["b", "d"]


def test_failed_import_keeps_block(emulator: PigmentEmulator, client: httpx.Client) -> None:
    first = push_import(client, SNAPSHOT_ID, b"x\n1\n2\n")
    wait_final(client, first)
    failed = push_import(client, SNAPSHOT_ID, b"")

    report = wait_final(client, failed)

    assert report["importStatus"] == "Failed"
    assert emulator.block_items("Snapshot") == 2


def test_block_items_unknown_block(emulator: PigmentEmulator) -> None:
    with pytest.raises(KeyError):
        emulator.block_items("Nowhere")


# Request bodies.


def test_chunked_upload(emulator: PigmentEmulator, client: httpx.Client) -> None:
    parts = [b"order_id,amount,order_date\n", b"1,1,2024-01-01\n2,", b"2,2024-01-02\n"]

    response = push(client, ORDERS_ID, iter(parts))
    import_id = response.json()["importId"]
    report = wait_final(client, import_id)

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert emulator.received_file(import_id).read_bytes() == b"".join(parts)
    assert summary(report)["insertedCount"] == 2


def test_file_upload_content_length(
    tmp_path: Path, emulator: PigmentEmulator, client: httpx.Client
) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(ORDERS_BODY)

    with open(source, "rb") as file:
        response = push(client, ORDERS_ID, file)
    import_id = response.json()["importId"]
    emulator.wait_for_idle()

    assert response.request.headers["Content-Length"] == str(len(ORDERS_BODY))
    assert emulator.received_file(import_id).read_bytes() == ORDERS_BODY


LARGE_ROW_COUNT = 50_000
LARGE_ROW_PAYLOAD = "x" * 1_050


def large_csv_chunks() -> Iterator[bytes]:
    """Yield a CSV of about 50 MiB in chunks of 64 rows, without holding it in memory."""
    yield b"id,payload\n"
    for start in range(0, LARGE_ROW_COUNT, 64):
        stop = min(start + 64, LARGE_ROW_COUNT)
        yield "".join(f"{index},{LARGE_ROW_PAYLOAD}\n" for index in range(start, stop)).encode()


def large_csv_size() -> int:
    return sum(len(chunk) for chunk in large_csv_chunks())


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_large_body_streamed(
    framing: str, start_emulator: Callable[..., PigmentEmulator]
) -> None:
    configuration = ImportConfiguration(
        id=ORDERS_ID, name="Large push", block_name="Large", column_types={"id": "number"}
    )
    emulator = start_emulator(configurations=[configuration])
    expected_size = large_csv_size()
    headers = dict(CSV_HEADERS)
    if framing == "content-length":
        headers["Content-Length"] = str(expected_size)

    with make_client(emulator) as client:
        tracemalloc.start()
        try:
            response = push(client, ORDERS_ID, large_csv_chunks(), headers=headers)
            emulator.wait_for_idle(timeout=120.0)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    import_id = response.json()["importId"]
    [entry] = emulator.ledger()

    assert expected_size > 50 * 1024 * 1024
    assert response.status_code == 200
    assert ("Transfer-Encoding" in response.request.headers) == (framing == "chunked")
    assert emulator.received_file(import_id).stat().st_size == expected_size
    assert entry["bytes"] == expected_size
    assert entry["rows"] == LARGE_ROW_COUNT
    assert entry["inserted"] == LARGE_ROW_COUNT
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes"


def test_concurrent_pushes(emulator: PigmentEmulator) -> None:
    def push_once(_index: int) -> int:
        with make_client(emulator) as client:
            return push(client, ORDERS_ID, ORDERS_BODY).status_code

    with ThreadPoolExecutor(max_workers=8) as executor:
        statuses = list(executor.map(push_once, range(16)))
    emulator.wait_for_idle()

    assert statuses == [200] * 16
    assert len(emulator.ledger()) == 16
    assert emulator.block_items("Orders") == 48


# Rate limits.


def test_import_quota_429(start_emulator: Callable[..., PigmentEmulator]) -> None:
    clock = FakeClock()
    emulator = start_emulator(now=clock, imports_per_configuration_limit=2)
    with make_client(emulator) as client:
        allowed = [push(client, ORDERS_ID, ORDERS_BODY).status_code for _push in range(2)]
        over_quota = push(client, ORDERS_ID, ORDERS_BODY)
        other_configuration = push(client, SNAPSHOT_ID, b"x\n1\n")
        clock.advance(3600.0)
        next_window = push(client, ORDERS_ID, ORDERS_BODY)

    assert allowed == [200, 200]
    assert over_quota.status_code == 429
    assert over_quota.text == (
        "Maximum number of reports per configuration per hour exceeded, maximum: 2."
    )
    assert "Retry-After" not in over_quota.headers
    assert other_configuration.status_code == 200
    assert next_window.status_code == 200


def test_request_rate_429(start_emulator: Callable[..., PigmentEmulator]) -> None:
    clock = FakeClock()
    emulator = start_emulator(now=clock, requests_per_ip_limit=3)
    status_path = f"/api/v1/import/{UNKNOWN_ID}/status"
    with make_client(emulator) as client:
        allowed = [client.get(status_path).status_code for _request in range(3)]
        limited = client.get(status_path)
        limited_push = push(client, ORDERS_ID, ORDERS_BODY)
        admin = client.get("/_emulator/configurations")
        clock.advance(300.0)
        next_window = client.get(status_path)

    assert allowed == [404, 404, 404]
    assert limited.status_code == 429
    assert limited.content == b""
    assert limited_push.status_code == 429
    assert admin.status_code == 200
    assert next_window.status_code == 404


# Configurations.


def test_admin_add_configuration(emulator: PigmentEmulator, client: httpx.Client) -> None:
    configuration = {
        "id": UNKNOWN_ID,
        "name": "Added over HTTP",
        "block_name": "Added",
        "expected_header": ["k", "v"],
        "unique_key": "k",
    }

    created = client.post("/_emulator/configurations", json=configuration)
    duplicate = client.post("/_emulator/configurations", json=configuration)
    listed = client.get("/_emulator/configurations").json()
    import_id = push_import(client, UNKNOWN_ID, b"k,v\n1,one\n")
    report = wait_final(client, import_id)

    assert created.status_code == 201
    assert created.json()["unique_key"] == "k"
    assert duplicate.status_code == 409
    assert UNKNOWN_ID in [item["id"] for item in listed]
    assert summary(report)["insertedCount"] == 1
    assert emulator.block_items("Added") == {"1": {"k": "1", "v": "one"}}


def test_admin_invalid_configuration(client: httpx.Client) -> None:
    response = client.post(
        "/_emulator/configurations",
        json={"id": UNKNOWN_ID, "name": "Bad", "block_name": "Bad", "delimiter": "|"},
    )

    assert response.status_code == 400
    assert "delimiter" in response.json()["error"]


def test_dimension_requires_unique_key() -> None:
    with pytest.raises(ValueError, match="unique_key"):
        ImportConfiguration(id=UNKNOWN_ID, name="Dim", block_name="Dim", list_kind="dimension")


def test_from_dict_unknown_field() -> None:
    with pytest.raises(ValueError, match="separator"):
        ImportConfiguration.from_dict(
            {"id": UNKNOWN_ID, "name": "n", "block_name": "b", "separator": ";"}
        )


def test_configuration_id_canonical() -> None:
    configuration = ImportConfiguration(id=UNKNOWN_ID.upper(), name="n", block_name="b")

    assert configuration.id == UNKNOWN_ID


def test_conflicting_block_definitions(emulator: PigmentEmulator) -> None:
    conflicting = ImportConfiguration(
        id=UNKNOWN_ID, name="Orders by key", block_name="Orders", unique_key="order_id"
    )

    with pytest.raises(ValueError, match="Orders"):
        emulator.add_configuration(conflicting)


# Command line.


def wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the emulator exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    api_key = "cli-secret-key"
    configurations_file = tmp_path / "configurations.json"
    configurations_file.write_text(
        json.dumps([make_configurations()[0].to_dict()]), encoding="utf-8"
    )
    ready_file = tmp_path / "ready.json"
    data_dir = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "airflow_pigment_redshift.testing.pigment_emulator",
        "--data-dir",
        str(data_dir),
        "--api-key",
        api_key,
        "--configurations",
        str(configurations_file),
        "--ready-file",
        str(ready_file),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_file(ready_file, process)
        ready = json.loads(ready_file.read_text(encoding="utf-8"))
        with httpx.Client(
            base_url=ready["url"],
            headers={"Authorization": f"Bearer {api_key}"},
            trust_env=False,
        ) as client:
            import_id = push_import(client, ORDERS_ID, ORDERS_BODY)
            report = wait_final(client, import_id)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert ready["pid"] == process.pid
    assert ready["url"].startswith("http://127.0.0.1:")
    assert report["importStatus"] == "Completed"
    assert process.returncode == 0
    assert f"Pigment import API emulator listening on {ready['url']}" in stdout.splitlines()
    assert import_id in stderr
    assert api_key not in stdout
    assert api_key not in stderr
    ledger_lines = (data_dir / "imports.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(ledger_lines[0])["rows"] == 3


def test_cli_invalid_configurations(tmp_path: Path) -> None:
    configurations_file = tmp_path / "configurations.json"
    configurations_file.write_text('[{"id": "x"}]', encoding="utf-8")

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_pigment_redshift.testing.pigment_emulator",
            "--data-dir",
            str(tmp_path / "data"),
            "--configurations",
            str(configurations_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    assert result.returncode == 2
    assert "entry 0" in result.stderr


def test_stop_closes_idle_connections(
    start_emulator: Callable[..., PigmentEmulator],
) -> None:
    emulator = start_emulator()
    with make_client(emulator) as client:
        client.get("/_emulator/configurations")
        stopper = threading.Thread(target=emulator.stop)
        stopper.start()
        stopper.join(timeout=10)

        assert not stopper.is_alive()
        with pytest.raises(httpx.TransportError):
            client.get("/_emulator/configurations")
