"""Trigger scale: many ``RedshiftStatementTrigger`` waits in one event loop against the emulator.

The emulator runs in a child process, so the CPU time measured here is the event loop's alone.
Prints one JSON line: CPU cores used while waiting, DescribeStatement calls per statement and
the delay between a statement reaching FINISHED and its trigger firing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Statements stay STARTED this long after submission. Creating 500 aiobotocore clients on
# 2 cores takes 20 to 40 s, so a shorter time lets statements finish before their trigger
# has made its first call, and the detection delay would then measure start-up instead.
RUNNING_SECONDS = 90.0


def serve(ready: Any, stop: Any, running_seconds: float) -> None:
    """Child process: serve an in-memory emulator whose statements stay STARTED for a while."""
    from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator

    with RedshiftDataEmulator(":memory:", running_seconds=running_seconds, max_active_statements=100_000) as emulator:
        ready.send(emulator.url)
        stop.wait()


async def wait_all(statement_ids: list[str], calls: dict[str, int]) -> dict[str, float]:
    from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger

    detected: dict[str, float] = {}

    async def wait_one(statement_id: str) -> None:
        trigger = RedshiftStatementTrigger(
            statement_id=statement_id, redshift_conn_id="pigment_redshift_default", poll_interval=30, timeout=600
        )
        async for event in trigger.run():
            if event.payload["status"] != "success":
                raise RuntimeError(f"Statement {statement_id}: {event.payload}")
            detected[statement_id] = time.time()

    await asyncio.gather(*(wait_one(statement_id) for statement_id in statement_ids))
    return detected


def main(argv: list[str] | None = None) -> int:
    """Run the trigger-scale benchmark and print its measurements as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trigger_scale")
    parser.add_argument("--statements", type=int, default=500)
    arguments = parser.parse_args(argv)

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    stop = context.Event()
    server = context.Process(target=serve, args=(sender, stop, RUNNING_SECONDS), daemon=True)
    server.start()
    url = receiver.recv()
    os.environ.update(
        {
            "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench-trigger-"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT": json.dumps(
                {
                    "conn_type": "pigment_redshift",
                    "login": "AKIABENCHMARK",
                    "password": "benchmark-secret",
                    "extra": {
                        "region_name": "eu-west-1",
                        "cluster_identifier": "bench-cluster",
                        "database": "dev",
                        "endpoint_url": url,
                    },
                }
            ),
        }
    )
    import boto3
    from botocore.config import Config

    from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook

    client = boto3.client(
        "redshift-data",
        region_name="eu-west-1",
        endpoint_url=url,
        aws_access_key_id="AKIABENCHMARK",
        aws_secret_access_key="benchmark-secret",
        config=Config(max_pool_connections=50),
    )
    calls: dict[str, int] = {}
    marks: dict[str, tuple[float, float]] = {}
    original = RedshiftDataApiHook.get_async_conn

    async def counting_conn(self: RedshiftDataApiHook) -> Any:
        connection = await original(self)

        class Counting:
            async def __aenter__(inner: Any) -> Any:
                real = await connection.__aenter__()
                describe = real.describe_statement

                async def counted(**request: Any) -> Any:
                    calls[request["Id"]] = calls.get(request["Id"], 0) + 1
                    if len(calls) == arguments.statements and "all_waiting" not in marks:
                        marks["all_waiting"] = (time.perf_counter(), time.process_time())
                    return await describe(**request)

                real.describe_statement = counted
                return real

            async def __aexit__(inner: Any, *exc: Any) -> Any:
                return await connection.__aexit__(*exc)

        return Counting()

    RedshiftDataApiHook.get_async_conn = counting_conn  # type: ignore[method-assign]

    statement_ids = [
        client.execute_statement(ClusterIdentifier="bench-cluster", Database="dev", Sql=f"SELECT {n} AS n")["Id"]
        for n in range(arguments.statements)
    ]
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    detected = asyncio.run(wait_all(statement_ids, calls))
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    waiting_since, cpu_at_waiting = marks["all_waiting"]
    waiting_cpu = time.process_time() - cpu_at_waiting

    waiting_wall = wall_start + wall - waiting_since
    delays = []
    for statement_id in statement_ids:
        finished_at = client.describe_statement(Id=statement_id)["UpdatedAt"].timestamp()
        delays.append(max(0.0, detected[statement_id] - finished_at))
    stop.set()
    server.join(timeout=10)
    print(
        json.dumps(
            {
                "statements": arguments.statements,
                "running_seconds": RUNNING_SECONDS,
                "wall_s": wall,
                "cpu_seconds": cpu,
                "cores_overall": cpu / wall,
                "setup_seconds": wall - waiting_wall,
                "cores_while_waiting": waiting_cpu / waiting_wall,
                "calls_per_statement": sum(calls.values()) / len(statement_ids),
                "detection_delay_median_s": statistics.median(delays),
                "detection_delay_max_s": max(delays),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
