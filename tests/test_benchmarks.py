"""benchmarks/rnn.py runs, checks equality first, and prints one table row per layer."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_prints_every_layer_with_its_ratios():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.rnn", "--quick", "--device", "cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert "fused kernel compiled in" in lines[0]
    header = [cell.strip() for cell in lines[2].strip("|").split("|")]
    rows = {
        cells[0]: dict(zip(header, cells))
        for line in lines[4:]
        if line.startswith("| ")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert set(rows) == {"RNN", "LSTM", "GRU", "PeepholeLSTM"}
    for kind, row in rows.items():
        for column in ("fwd ratio", "fwd+bwd ratio", "memory ratio", "matmul floor"):
            assert float(row[column]) > 0, (kind, column)
        fused = row["fused fwd+bwd ratio"]
        assert (fused == "–") == (kind in ("RNN", "GRU")), (kind, fused)
    assert lines[-1].startswith("worst ratios: forward ")
