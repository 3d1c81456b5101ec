"""`ladder plan --estimate`: the table per size and in total, its flags, and their mistakes."""

from __future__ import annotations

import json

import pytest

from ladder_api.estimate import DEFAULT_TRAIN_MFU
from ladder_cli.main import main
from tests.conftest import EXAMPLES

PAPER = str(EXAMPLES / "paper-v5e.yaml")


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def number(text: str) -> float:
    return float(text.replace(",", ""))


def table(out: str) -> dict[str, list[str]]:
    """The table's rows by their first cell (c64 ... total)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and (cells[0].startswith("c") and cells[0][1:].isdigit() or cells[0] == "total"):
            rows[cells[0]] = cells
    return rows


def test_the_table_has_every_size_and_a_total_that_scales_with_the_utilisation(capsys):
    code, out, err = run(capsys, "plan", PAPER, "--estimate", "--mfu", "0.25")
    assert code == 0 and err == ""
    rows = table(out)
    assert list(rows) == ["c64", "c96", "c128", "c160", "c192", "c224", "c256", "c288", "c320", "c512",
                          "c768", "total"]
    assert rows["c768"][1] == "5B" and rows["c768"][2] == "2x v5litepod-256 (512)"
    total = rows["total"]
    assert number(total[-1]) == pytest.approx(number(total[4]) + number(total[8]), abs=1)
    _, faster, _ = run(capsys, "plan", PAPER, "--estimate", "--mfu", "0.5")
    assert number(table(faster)["total"][-1]) == pytest.approx(number(total[-1]) / 2, rel=1e-4)
    assert "training 25%, evaluation 25%" in out and "cost" not in rows["total"]


def test_price_adds_money_and_size_selects_one_row(capsys):
    code, out, _ = run(capsys, "plan", PAPER, "--estimate", "--size", "320", "--price-per-chip-hour", "2",
                       "--eval-mfu", "0.1", "--dataset-examples", "600e6")
    assert code == 0
    rows = table(out)
    assert list(rows) == ["c320", "total"]
    assert number(rows["total"][-1]) == pytest.approx(2 * number(rows["total"][-2]), abs=2)
    train = f"training {DEFAULT_TRAIN_MFU:.0%}, evaluation 10%"  # the default, and the flag's
    assert "600,000,000 examples" in out and train in out


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--mfu", "0"], "--mfu"), (["--mfu", "lots"], "--mfu"), (["--eval-mfu", "1.5"], "--eval-mfu"),
     (["--price-per-chip-hour", "-1"], "--price-per-chip-hour"),
     (["--dataset-examples", "1.5"], "--dataset-examples")],
)
def test_bad_values_exit_2_naming_the_flag(capsys, args, flag):
    with pytest.raises(SystemExit) as exc:
        main(["plan", PAPER, "--estimate", *args])
    assert exc.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err


def test_estimate_flags_without_estimate_and_estimate_with_output_dir_are_refused(capsys, tmp_path):
    code, out, err = run(capsys, "plan", PAPER, "--mfu", "0.5", "--price-per-chip-hour", "1")
    assert code == 2 and out == ""
    assert "--mfu, --price-per-chip-hour: only with --estimate" in err
    code, _, err = run(capsys, "plan", PAPER, "--json")
    assert code == 2 and "--json: only with --estimate" in err
    code, _, err = run(capsys, "plan", PAPER, "--estimate", "-o", str(tmp_path))
    assert code == 2 and "-o/--output-dir" in err and not list(tmp_path.iterdir())


def test_json_has_every_size_and_totals_that_add_up(capsys):
    code, out, _ = run(capsys, "plan", PAPER, "--estimate", "--json", "--price-per-chip-hour", "1")
    assert code == 0
    doc = json.loads(out)
    sizes, total = doc["sizes"], doc["total"]
    assert [s["width"] for s in sizes][-1] == 768 and len(sizes) == 11
    assert total["chipHours"] == pytest.approx(sum(s["chipHours"] for s in sizes))
    assert total["cost"] == pytest.approx(total["chipHours"])
    c320 = sizes[8]
    parts = c320["evalUnetFlops"] + c320["evalDecoderFlops"] + c320["evalFeatureFlops"]
    assert c320["evalFlops"] == pytest.approx(parts)
    assert c320["trainHours"] == pytest.approx(c320["trainChipHours"] / c320["chips"])
