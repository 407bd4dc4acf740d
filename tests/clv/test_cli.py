"""`siyu clv fit` on a plain transaction file prints the fitted model as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siyu.cli import app

from .conftest import CDNOW


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("bgnbd", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
        ("gammagamma", {"p": 6.25, "q": 3.74, "gamma": 15.44}),
        ("pareto", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}),
    ],
)
def test_fit_prints_the_published_cdnow_parameters(model: str, expected: dict[str, float]) -> None:
    result = CliRunner().invoke(
        app, ["clv", "fit", str(CDNOW), "--model", model, "--calibration-end", "1997-09-30"]
    )
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.output)
    assert {
        name: round(value, len(str(expected[name]).split(".")[1])) for name, value in fitted["params"].items()
    } == expected
    assert fitted["customers"] == (946 if model == "gammagamma" else 2357)


def test_fit_reads_a_csv_in_days(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    rows = ["customer_id,date,amount"]
    for customer in range(60):
        for k in range(customer % 4 + 1):
            rows.append(f"c{customer},2024-{1 + (customer % 3):02d}-{1 + 7 * k:02d},{10 + customer % 7}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["clv", "fit", str(path), "--model", "mbgnbd", "--unit", "day"])
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.output)
    assert fitted["model"] == "ModifiedBetaGeoFitter" and fitted["unit"] == "day"
    assert set(fitted["params"]) == {"r", "alpha", "a", "b"}
