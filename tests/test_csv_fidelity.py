"""CSV fidelity: one test per row of docs/csv-fidelity.md.

Each row selects one value next to a constant column, reads the result from the Redshift
Data API emulator in both result formats, and checks the exact bytes of the CSV line written
for Pigment in both dialects Pigment offers. The last test imports one row of every type
through the operator and compares what Pigment received.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration
from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator
from tests.helpers import task_context

COMMA = CsvDialect(delimiter=",", quote_char='"')
SEMICOLON = CsvDialect(delimiter=";", quote_char="'")


@dataclass(frozen=True)
class FidelityRow:
    """One row of the fidelity table.

    :param row_id: the row's id in docs/csv-fidelity.md.
    :param expression: Redshift SQL expression of the value.
    :param comma_cell: the cell written with separator ``,`` and quote ``"``.
    :param semicolon_cell: the cell written with separator ``;`` and quote ``'``.
    """

    row_id: str
    expression: str
    comma_cell: str
    semicolon_cell: str | None = None

    @property
    def semicolon(self) -> str:
        return self.comma_cell if self.semicolon_cell is None else self.semicolon_cell


ROWS = [
    FidelityRow("smallint", "CAST(-32768 AS SMALLINT)", "-32768"),
    FidelityRow("integer", "CAST(2147483647 AS INTEGER)", "2147483647"),
    FidelityRow("bigint", "CAST(9223372036854775807 AS BIGINT)", "9223372036854775807"),
    FidelityRow("decimal-scale", "CAST('12345678901234567890.10' AS DECIMAL(38,2))", "12345678901234567890.10"),
    FidelityRow("decimal-small", "CAST(-0.05 AS DECIMAL(10,4))", "-0.0500"),
    FidelityRow("real", "CAST(0.1 AS REAL)", "0.1"),
    FidelityRow("double", "CAST(1e300 AS DOUBLE PRECISION)", "1e+300"),
    FidelityRow("double-nan", "CAST('NaN' AS DOUBLE PRECISION)", "NaN"),
    FidelityRow("double-infinity", "CAST('Infinity' AS DOUBLE PRECISION)", "Infinity"),
    FidelityRow("double-minus-infinity", "CAST('-Infinity' AS DOUBLE PRECISION)", "-Infinity"),
    FidelityRow("boolean", "TRUE", "true"),
    # NOTE: DuckDB drops the length of CHAR(n), so the emulator cannot pad CHAR values as Redshift
    # does. The row checks that trailing blanks reach Pigment unchanged, using a padded VARCHAR.
    FidelityRow("char-padding", "CAST('ab   ' AS VARCHAR(5))", "ab   "),
    FidelityRow("varchar-delimiters", "'a,b;c'", '"a,b;c"', "'a,b;c'"),
    FidelityRow("varchar-quotes", "'say \"hi\" it''s'", '"say ""hi"" it\'s"', "'say \"hi\" it''s'"),
    FidelityRow("varchar-crlf", "'a' || CHR(13) || CHR(10) || 'b'", '"a\r\nb"', "'a\r\nb'"),
    FidelityRow("varchar-tab", "'a' || CHR(9) || 'b'", "a\tb"),
    FidelityRow("varchar-non-ascii", "'Zürich – 東京 😀'", "Zürich – 東京 😀"),
    FidelityRow("empty-string", "''", '""', "''"),
    FidelityRow("null", "CAST(NULL AS VARCHAR)", ""),
    FidelityRow("date", "DATE '1995-03-01'", "1995-03-01"),
    FidelityRow("timestamp", "TIMESTAMP '1995-03-01 12:34:56.789'", "1995-03-01 12:34:56.789"),
    FidelityRow("timestamptz", "CAST('1995-03-01 12:34:56+02' AS TIMESTAMPTZ)", "1995-03-01 10:34:56+00"),
    FidelityRow("time", "TIME '12:34:56'", "12:34:56"),
    FidelityRow("super", "JSON_PARSE('{\"a\": [1, \"x\"]}')", '"{""a"":[1,""x""]}"', '{"a":[1,"x"]}'),
    FidelityRow("varbyte", "CAST('abc' AS VARBYTE)", "616263"),
]


@pytest.fixture(scope="module")
def redshift_hook() -> Iterator[RedshiftDataApiHook]:
    emulator = RedshiftDataEmulator(":memory:").start()
    connection = {
        "conn_type": "pigment_redshift",
        "login": "AKIATESTACCESSKEY",
        "password": "test-secret-access-key",
        "extra": {"region_name": "eu-west-1", "cluster_identifier": "test-cluster", "database": "dev",
                  "endpoint_url": emulator.url},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(connection))
        yield RedshiftDataApiHook()
    emulator.stop()


def written_line(hook: RedshiftDataApiHook, sql: str, result_format: str, dialect: CsvDialect) -> str:
    statement_id = hook.execute_statement(sql, result_format=result_format)
    hook.wait_for_statement(statement_id, timeout=30, poll_interval=0.1)
    stream = io.StringIO(newline="")
    hook.stream_result(statement_id, ResultCsvWriter(stream, dialect), result_format=result_format)
    header, _, data = stream.getvalue().partition("\n")
    assert header == dialect.delimiter.join(["v", "tail"])
    return data


@pytest.mark.parametrize("result_format", ["CSV", "JSON"])
@pytest.mark.parametrize("row", ROWS, ids=[row.row_id for row in ROWS])
def test_cell_written_exactly(redshift_hook, row: FidelityRow, result_format: str):
    sql = f"SELECT {row.expression} AS v, 'end' AS tail"

    comma_line = written_line(redshift_hook, sql, result_format, COMMA)
    semicolon_line = written_line(redshift_hook, sql, result_format, SEMICOLON)

    assert comma_line == f"{row.comma_cell},end\n"
    assert semicolon_line == f"{row.semicolon};end\n"


def test_every_type_reaches_pigment(connections):
    from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator

    _, pigment = connections
    names = [row.row_id.replace("-", "_") for row in ROWS]
    configuration_id = "7d2a4c9e-1b3f-4e8a-9c0d-2f6b8a1e3c57"
    pigment.add_configuration(
        ImportConfiguration(id=configuration_id, name="Fidelity", block_name="Fidelity", expected_header=names)
    )
    sql = "SELECT " + ", ".join(f"{row.expression} AS {name}" for row, name in zip(ROWS, names))

    for try_number, result_format in enumerate(("CSV", "JSON"), start=1):
        summary = RedshiftToPigmentOperator(
            task_id="fidelity",
            sql=sql,
            configuration_id=configuration_id,
            result_format=result_format,
            expected_columns=names,
            deferrable=False,
            poll_interval=1,
            import_poll_interval=0.05,
        ).execute(task_context(try_number=try_number))

        received = pigment.received_file(summary["import_id"]).read_bytes().decode("utf-8")
        expected_line = ",".join(row.comma_cell for row in ROWS) + "\n"
        assert received == ",".join(names) + "\n" + expected_line
        assert summary["import_status"] == "Completed"
