"""Table 1 of the paper, reproduced by the analytic counter."""

import pytest

from ladder_api.ladder import PAPER_TABLE, UNetShape, format_params, forward_flops, param_count


@pytest.mark.parametrize("row", PAPER_TABLE, ids=lambda r: f"c{r.width}")
def test_params_match_table_1(row):
    assert format_params(param_count(UNetShape(base_channels=row.width, context_dim=1024))) == row.params


@pytest.mark.parametrize("row", [r for r in PAPER_TABLE if r.width >= 96], ids=lambda r: f"c{r.width}")
def test_gflops_within_3_percent_of_table_1(row):
    """The README states 3% (c >= 96): checked here at that bound."""
    gflops = forward_flops(UNetShape(base_channels=row.width, context_dim=1024)) / 1e9
    assert abs(gflops - row.gflops) / row.gflops < 0.03


def test_sd_v15_context_gives_the_known_sd_count():
    assert param_count(UNetShape(base_channels=320, context_dim=768)) == 859_520_964
