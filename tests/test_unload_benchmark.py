"""The UNLOAD benchmark's readers, run once at a small size: they must work, not be fast."""

from __future__ import annotations

from pathlib import Path

from benchmarks.unload import UNLOAD_READERS, benchmark_unload, render_unload_section


def test_unload_benchmark_pushes_every_row(tpch_database: Path):
    runs, details = benchmark_unload(20_000, 1, list(UNLOAD_READERS), tpch_database)

    # One import per run of the unload reader, each with every row.
    assert details["pigment_import_rows"] == [20_000]
    assert details["parts"] == 1
    assert details["part_bytes"] > 20_000 * 100
    assert runs["unload"]["runs"] == 1
    assert 0 < details["reader_unload_statement_s"] < runs["unload"]["wall_s"]
    # The Pigment CSV file has the same bytes as the part: same header, same cell text.
    assert runs["unload"]["bytes"] == details["part_bytes"]
    assert runs["unload_download_only"]["runs"] == 1
    assert runs["unload_download_only"]["bytes"] == 0
    table = "\n".join(render_unload_section("20000", runs, details))
    assert "### 20,000 rows through UNLOAD" in table
    assert "| unload_download_only |" in table
