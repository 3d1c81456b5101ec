"""The report's pure tables and figures on made-up results (tests only: the product reports
recorded measurements), and the Markdown/HTML writers on a synthetic run directory."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from ladder_api import artifacts
from ladder_api.frontier import sampling_cost
from ladder_api.plan import expand
from ladder_api.status import Result, result_id
from ladder_local.status_build import build_status
from ladder_report import analysis, plots, write_report
from ladder_report.labels import label
from ladder_report.load import SampleSet
from tests.local.conftest import tiny_experiment

PNG = b"\x89PNG"


def _res(width, norm, sampler, steps, g, metric, value):
    paper, with_g = sampling_cost(norm, steps, g)
    return Result(id=result_id(width, 6, sampler, steps, g, metric), width=width, checkpoint_step=6,
                  sampler=sampler, steps=steps, guidance=g, metric=metric, value=value, num_samples=10,
                  gflops_per_forward=norm, sampling_cost=paper, sampling_cost_with_guidance=with_g,
                  settings={"fidFeatures": "digits-classifier", "autoencoder": "identity"})


def _synthetic(runs):
    out = []
    for run in runs:
        w, norm = run.width, run.model.normalized_cost
        for sampler in ("ddim", "dpmpp_2m"):
            for n in (2, 4):
                for g in (1.0, 3.0):
                    out.append(_res(w, norm, sampler, n, g, "fid-digits-classifier", 40.0 / (w * n) + g))
                    out.append(_res(w, norm, sampler, n, g, "adherence", min(0.95, 0.02 * w + 0.05 * g)))
    return out


def _runs():
    return expand(tiny_experiment(), root="/out").runs


def test_labels_never_pass_offline_fid_as_inception():
    assert "not comparable to Inception" in label("fid-digits-classifier").long.replace("Not", "not")
    assert "Chance is 10%" in label("adherence").long
    assert label("fid-foo").short == "FID (foo features)"


def test_ladder_table_has_the_analytic_costs():
    runs = _runs()
    t = analysis.ladder_table(runs, {8: [{"step": 5, "loss": 0.3}, {"step": 6, "loss": 0.1}]})
    assert t.headers[:4] == ["c", "parameters", "GFLOPs / forward", "normalized cost"]
    assert t.rows[0][0] == "c8" and t.rows[0][1] == f"{runs[0].model.params:,}"
    assert t.rows[0][4] == "6/6" and t.rows[0][5] == "0.2000" and t.rows[1][4] == "-/6"


def test_frontier_table_merges_budgets_with_the_same_winner():
    runs = _runs()
    s = analysis.summary_of(_synthetic(runs), 2)
    t = analysis.frontier_table(s)
    keys = [(*r[1:5], r[-2], r[-1]) for r in t.rows]  # setting, decision and tied settings
    assert all(a != b for a, b in zip(keys, keys[1:], strict=False))
    assert len(t.rows) <= len(s.frontier)
    assert t.headers[-3:] == ["FID (digits-classifier features) [CI]", "decision",
                              "settings not distinguishable from it"]
    g = analysis.frontier_table(analysis.summary_with_guidance_cost(_synthetic(runs), 2), with_guidance=True)
    assert g.headers[5] == "cost with guidance" and g.rows
    # guided settings cost twice as much there: every budget row's cost is a with-guidance cost
    guided = {(r.width, r.sampler, r.steps, r.guidance): r.sampling_cost_with_guidance
              for r in _synthetic(runs)}
    assert all(float(row[5]) == pytest.approx(guided[(int(row[1][1:]), row[2], int(row[3]), float(row[4]))],
                                             rel=1e-3) for row in g.rows)


def test_the_report_shows_the_headline_sampler_and_each_samplers_frontier():
    """DDIM is the headline (the paper's Figure 9); DPM-Solver++ and the pooled view follow,
    labelled, from the same results (Figure 11)."""
    runs = _runs()
    results = _synthetic(runs)
    # DPM-Solver++ much better than DDIM: the pooled frontier is all DPM-Solver++, DDIM's is DDIM
    results = [r.model_copy(update={"value": r.value - 20.0}) if r.sampler == "dpmpp_2m" else r
               for r in results]
    s = analysis.summary_of(results, 2, runs[0].evaluation, all_views=True)
    assert [v.sampler for v in s.views] == ["ddim", "dpmpp_2m", "pooled"]
    assert {p.sampler for p in s.frontier} == {"ddim"}
    assert {p.sampler for p in s.views[2].frontier} == {"dpmpp_2m"}
    titles = [analysis.frontier_table(s).title]
    titles += [analysis.frontier_table(s, view=v).title for v in s.views[1:]]
    assert titles[0].startswith("The frontier (ddim only)")
    assert "dpmpp_2m only" in titles[1] and "all samplers pooled" in titles[2]
    assert {r[2] for r in analysis.frontier_table(s, view=s.views[1]).rows} == {"dpmpp_2m"}


def test_adherence_headline_is_about_the_largest_size():
    runs = _runs()
    h = analysis.adherence_headline(_synthetic(runs), runs)
    assert h.width == 16 and h.best == pytest.approx(0.47) and h.n_settings == 8
    assert "well above chance (10%)" in h.sentence() and "c16" in h.sentence()
    assert analysis.adherence_headline([], runs) is None
    near = analysis.Headline(16, 0.2, "ddim", 0.15, 8, 40, interval=(0.09, 0.35), confidence=0.95)
    assert "(95% interval 9.0% to 35.0%)" in near.sentence()
    assert "not distinguishable from chance" in near.sentence()  # 20% on 40 samples: may be chance
    sure = analysis.Headline(16, 0.9, "ddim", 0.8, 8, 400, interval=(0.86, 0.93), confidence=0.95)
    assert "well above chance" in sure.sentence()


def test_equal_cost_picks_more_steps_for_smaller_sizes():
    img = np.zeros((3, 8, 8, 1))

    def s(w, sampler, n, g):
        return SampleSet(w, sampler, n, g, 6, img, None, Path(f"/s/{w}-{sampler}-{n}-{g}.npz"))

    sets = [s(8, "ddim", n, 3.0) for n in (4, 8, 16)] + [s(16, "ddim", n, 3.0) for n in (4, 8, 16)]
    sets += [s(8, "ddpm", 16, 5.0)]  # not available for every size: not preferred
    old = SampleSet(16, "ddim", 4, 3.0, 2, img, None, Path("/s/old.npz"))  # an older checkpoint
    sets = [old, *sets]
    pick = analysis.equal_cost_samples(sets, {8: 0.1, 16: 0.4})
    assert pick.target_cost == 1.6 and (pick.sampler, pick.guidance) == ("ddim", 3.0)
    assert [(w, ss.steps, ss.checkpoint_step) for w, ss, _ in pick.picks] == [(8, 16, 6), (16, 4, 6)]
    assert analysis.equal_cost_samples([], {8: 0.1}) is None


def _rgb(png: bytes) -> np.ndarray:
    """A figure decoded as H x W x 3 uint8 (PIL, the reader matplotlib itself uses)."""
    from PIL import Image

    assert png.startswith(PNG)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _ink(img: np.ndarray, colour, tol: int = 8) -> tuple[int, int]:
    """(pixels drawn in exactly this colour, how many columns they span): a plotted series is many
    pixels wide; a legend swatch alone is a few dozen pixels."""
    target = np.array(colour[:3]) * 255
    mask = np.abs(img.astype(int) - target).max(axis=-1) <= tol
    cols = np.nonzero(mask.any(axis=0))[0]
    return int(mask.sum()), int(cols.max() - cols.min() + 1) if len(cols) else 0


def _drawn(img: np.ndarray, colour, min_span: float) -> bool:
    pixels, span = _ink(img, colour)
    return pixels >= 100 and span >= min_span * img.shape[1]


def test_each_size_is_plotted_in_its_own_colour():
    runs = _runs()
    results = _synthetic(runs)
    fid = "fid-digits-classifier"
    colour = plots._colors([8, 16])
    absent = plots._colors([8, 12, 16])[12]  # the colour a third size would get
    losses = {w: [{"step": i, "loss": k / i} for i in range(1, 20)] for w, k in ((8, 1.0), (16, 2.0))}
    img = _rgb(plots.loss_curves(losses))
    assert 300 < img.shape[0] < 600 and 500 < img.shape[1] < 800  # 6.4 x 4 in at 110 dpi, trimmed
    assert _drawn(img, colour[8], 0.6) and _drawn(img, colour[16], 0.6)  # curves across the axes
    assert _ink(img, absent)[0] == 0
    only8 = _rgb(plots.loss_curves({8: losses[8]}))
    assert _ink(only8, plots._colors([8])[8])[0] > 0 and _ink(only8, colour[16])[0] == 0

    img = _rgb(plots.fid_vs_cost(analysis.curve_points(results, fid), fid))
    assert _drawn(img, colour[8], 0.2) and _drawn(img, colour[16], 0.2) and _ink(img, absent)[0] == 0


def test_frontier_plot_draws_the_winners_segments():
    runs = _runs()
    results = _synthetic(runs)
    fid = "fid-digits-classifier"
    s = analysis.summary_of(results, 2)
    colour = plots._colors([8, 16])
    img = _rgb(plots.frontier_plot([r for r in results if r.metric == fid], s.frontier, fid))
    winners = {p.width for p in s.frontier}
    assert winners == {8, 16}
    for w in winners:  # dots are translucent; only the frontier's segments are in the full colour
        assert _ink(img, colour[w])[0] >= 100


def test_guidance_sweep_has_a_panel_per_metric():
    results = _synthetic(_runs())
    one = _rgb(plots.guidance_sweep(results, ["fid-digits-classifier"]))
    two = _rgb(plots.guidance_sweep(results, ["fid-digits-classifier", "adherence"]))
    assert two.shape[1] == pytest.approx(2 * one.shape[1], rel=0.15)
    assert _drawn(two, plots._colors([8, 16])[16], 0.5)  # in both panels


def test_sample_grid_shows_one_image_per_prompted_digit():
    grey = np.full((10, 8, 8, 1), 0.5)  # each image a uniform mid-grey square
    prompted = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 3])
    img = _rgb(plots.sample_grid([("c8", grey, prompted), ("c16", grey, None)]))
    mask = (np.abs(img.astype(int) - 127) <= 3).all(axis=-1)
    rows = np.nonzero(mask.any(axis=1))[0]
    bands = [b for b in np.split(rows, np.nonzero(np.diff(rows) > 1)[0] + 1) if len(b) >= 10]
    per_row = []
    for band in bands:
        line = mask[band[len(band) // 2]].astype(int)
        per_row.append(int((np.diff(np.r_[0, line, 0]) == 1).sum()))
    assert per_row == [4, 10]  # digits 0-3 once each in the labelled row, all ten without labels


def test_empty_inputs_give_no_figure():
    fid = "fid-digits-classifier"
    assert plots.loss_curves({}) is None and plots.fid_vs_cost([], fid) is None
    assert plots.frontier_plot([], [], fid) is None and plots.sample_grid([]) is None
    assert plots.guidance_sweep([], [fid]) is None


def test_report_of_a_run_directory_is_complete_and_self_contained(tmp_path):
    plan = expand(tiny_experiment(), root=str(tmp_path))
    results = _synthetic(plan.runs)
    for run in plan.runs:
        Path(run.paths.root).mkdir(parents=True)
        mine = [r for r in results if r.width == run.width]
        for i in range(0, len(mine), 5):  # one object per evaluator write, as the evaluator does
            artifacts.ResultsWriter(run.paths.results).write(mine[i:i + 5])
        metrics = artifacts.MetricsWriter(run.paths.metrics, resume_step=0)
        for i in range(1, 7):
            metrics.write({"step": i, "loss": 1.0 / i})
        Path(run.paths.samples).mkdir()
        rng = np.random.default_rng(run.width)
        np.savez(Path(run.paths.samples) / "ddim-n4-g3.npz", images=rng.random((10, 8, 8, 1)) * 2 - 1,
                 labels=np.arange(10), sampler="ddim", steps=4, guidance=3.0, checkpoint_step=6)
        (tmp_path / "configs").mkdir(exist_ok=True)
        (tmp_path / "configs" / f"{run.name}.json").write_text(run.config_json())
    status = build_status(plan, {}, {}, active=False, now="T")
    (tmp_path / "status.json").write_text(json.dumps(status.to_wire()))

    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)  # a run directory is self-contained: it reports its own files wherever it is
    tmp_path = moved
    paths = write_report(tmp_path)
    md = paths.markdown.read_text()
    for heading in ("## The ladder", "## FID against sampling cost", "## The frontier", "## Guidance sweeps",
                    "## Samples at equal sampling cost", "## What the metrics measure", "## Exact settings",
                    "## All measurements"):
        assert heading in md
    assert "well above chance (10%)" in md and "not comparable to Inception FID" in md.replace("Not", "not")
    assert f"{len(results)} measurements recorded" in md  # every writer's objects, merged
    for name in ("loss_curves", "fid_vs_cost", "frontier", "guidance", "samples"):
        assert f"report_files/{name}.png" in md
        assert min(_rgb((paths.figures / f"{name}.png").read_bytes()).shape[:2]) > 50
    page = paths.html.read_text()
    srcs = re.findall(r'src="([^"]+)"', page)
    assert len(srcs) == 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    embedded = [base64.b64decode(s.split(",", 1)[1]) for s in srcs]
    assert sorted(embedded) == sorted((paths.figures / f"{n}.png").read_bytes() for n in (
        "loss_curves", "fid_vs_cost", "frontier", "guidance", "samples"))
    assert "<table>" in page and "fidFeatures" in page


def _storage_root(root: str, failed: bool = True) -> list[Result]:
    """An experiment's storage root as the cluster's pods leave it: each size's config.json (the
    operator records it), result objects, metrics; no status.json, no configs/ folder."""
    from ladder_api import storage

    plan = expand(tiny_experiment(), root=root)
    results = _synthetic(plan.runs)
    if failed:  # a measurement that came out NaN: recorded as failed, with its reason
        bad = results[0].to_wire()
        results[0] = Result.model_validate({**bad, "value": float("nan")})
    for run in plan.runs:
        artifacts.write_run_config(run)
        mine = [r for r in results if r.width == run.width]
        for i in range(0, len(mine), 5):
            artifacts.ResultsWriter(run.paths.results).write(mine[i:i + 5])
        metrics = artifacts.MetricsWriter(run.paths.metrics, resume_step=0, min_interval_s=0)
        for i in range(1, 7):
            metrics.write({"step": i, "loss": 1.0 / i})
        metrics.flush()
    assert storage.list_dir(root)
    return results


def _comparable(md: str) -> str:
    """The report without the lines that name where it was read or when."""
    return "\n".join(ln for ln in md.splitlines() if "Run directory" not in ln and "Generated" not in ln
                     and "generated" not in ln)


def test_a_storage_root_reports_alone_and_lists_failed_measurements(tmp_path):
    results = _storage_root(str(tmp_path / "root"))
    paths = write_report(str(tmp_path / "root"), tmp_path / "out")
    md = paths.markdown.read_text()
    assert f"{len(results) - 1} measurements recorded (1 more failed" in md
    assert "## Failed measurements" in md and "the metric came out nan" in md
    assert "## The frontier" in md and paths.html.is_file()


def test_a_gs_storage_root_reports_like_a_local_one(tmp_path, gcs):
    _storage_root(str(tmp_path / "root"))
    bucket = gcs.bucket("ladder-report")
    _storage_root(f"{bucket}/exp/tiny")
    local = write_report(str(tmp_path / "root"), tmp_path / "local").markdown.read_text()
    remote = write_report(f"{bucket}/exp/tiny", tmp_path / "remote").markdown.read_text()
    assert _comparable(local) == _comparable(remote)


def test_a_folder_that_is_neither_is_a_user_error(tmp_path):
    from ladder_api.errors import UserError

    with pytest.raises(UserError, match="neither a `ladder run` directory"):
        write_report(str(tmp_path))


def test_intervals_and_a_clearly_labelled_prediction_for_sizes_still_training():
    """Four sizes, three measured with intervals: FID falls with size as a power law of GFLOPs,
    so the report predicts the fourth (labelled as a prediction) and prints the intervals."""
    runs = expand(tiny_experiment(widths=(8, 16, 24, 32)), root="/out").runs
    measured = []
    for run in runs[:3]:
        g, norm = run.model.gflops_per_forward, run.model.normalized_cost
        for n in (2, 4):
            fid = 50.0 * g ** -0.4 * (1 + 0.3 / n) * (1 + 0.01 * (run.width % 3))
            r = _res(run.width, norm, "ddim", n, 1.0, "fid-digits-classifier", fid)
            measured.append(r.model_copy(update={"gflops_per_forward": g, "ci_low": fid - 0.5,
                                                 "ci_high": fid + 0.5, "stderr": 0.25, "confidence": 0.9}))
    got = analysis.prediction_table(measured, runs, "fid-digits-classifier", 0.9)
    assert got is not None
    table, words = got
    assert table.title.startswith("PREDICTED, not measured")
    assert {row[1] for row in table.rows} == {"c32"} and all(row[-1] == "3" for row in table.rows)
    assert float(table.rows[-1][4]) > 0.5  # the law says bigger is better
    assert words[0].startswith("c32 is predicted to win budgets from")
    assert analysis.prediction_table(measured, runs[:3], "fid-digits-classifier", 0.9) is None
    s = analysis.summary_of(measured, 4)
    assert s.confidence == 0.9 and "[" in analysis.frontier_table(s).rows[0][6]
    assert "[" in analysis.best_per_size_table(measured, "fid-digits-classifier").rows[0][1]
