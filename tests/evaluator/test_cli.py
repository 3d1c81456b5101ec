"""`python -m ladder_evaluator` end to end on a tiny U-Net checkpoint written with the trainer's
checkpointing: results folder, skip on re-run, determinism under --force, sample files, and exit 2
with a clear message for each user error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ladder_api import artifacts, storage
from ladder_api.loading import parse_experiment
from ladder_api.plan import RunConfig, expand
from ladder_api.spec import FidFeatures, MetricName
from ladder_evaluator.main import main
from ladder_evaluator.metrics import fid

from .conftest import evaluable


def _experiment(out: Path, **evaluation):
    ev = {
        "samplers": ["ddim"], "steps": [2], "guidanceScales": [1.0, 3.0], "numSamples": 12, "batchSize": 6,
        "metrics": ["fid", "adherence"], "fidFeatures": "digits-classifier", **evaluation,
    }
    return parse_experiment({
        "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "evtest"},
        "spec": {
            "ladder": {"widths": [16], "contextDim": 8, "contextTokens": 4, "channelMult": [1, 2],
                       "numResBlocks": 1, "attentionLevels": [1], "numHeads": 2, "normGroups": 8,
                       "latentChannels": 1, "latentSize": 8},
            "data": {"trainUri": "builtin:digits", "autoencoder": {"kind": "identity"},
                     "textEncoder": "builtin-digits",
                     "referenceSet": {"name": "digits-test", "uri": "builtin:digits-test"}},
            "training": {"steps": 10, "globalBatch": 8, "computeDtype": "float32",
                         "lrSchedule": {"warmupSteps": 0}},
            "evaluation": ev,
            "storage": {"outputUri": str(out)},
        },
    })


def _write_config(tmp: Path, run: RunConfig, name="run.json") -> str:
    path = tmp / name
    path.write_text(run.model_dump_json(by_alias=True))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, classifier_cache, digits_extractor):
    """A run config and a checkpoint at step 10 (conftest.evaluable)."""
    out = tmp_path_factory.mktemp("evrun")
    return out, evaluable(expand(_experiment(out)).runs[0], classifier_cache)


def _results(folder) -> dict[str, dict]:
    return {r.id: r.to_wire() for r in artifacts.read_results(str(folder))}


@pytest.mark.slow
def test_grid_results_skip_and_force(trained, tmp_path):
    out, run = trained
    config = _write_config(tmp_path, run)
    results = tmp_path / "results"
    args = ["--config", config, "--checkpoint", run.paths.checkpoints, "--results", str(results),
            "--no-progress"]
    assert main(args) == 0
    first = _results(results)
    objects = storage.list_files(str(results))
    assert len(objects) == 2  # one write per grid point (both metrics of a setting together)
    assert sorted(first) == sorted(
        f"c16-s10-ddim-n2-g{g}-{m}" for g in ("1", "3") for m in ("fid-digits-classifier", "adherence")
    )
    r = first["c16-s10-ddim-n2-g3-fid-digits-classifier"]
    assert r["numSamples"] == 12 and r["value"] > 0
    assert r["samplingCost"] == pytest.approx(run.model.normalized_cost * 2)
    assert r["samplingCostWithGuidance"] == pytest.approx(2 * r["samplingCost"])
    assert first["c16-s10-ddim-n2-g1-adherence"]["samplingCostWithGuidance"] == pytest.approx(
        first["c16-s10-ddim-n2-g1-adherence"]["samplingCost"])
    assert r["settings"]["features"] == "digits-classifier" and r["settings"]["weights"] == "ema"
    assert {x["settings"]["metricsBackend"] for x in first.values()} == {"torch"}  # no JAX digits classifier
    # every result carries its interval and the replicates on the shared resamples
    b = run.evaluation.bootstrap
    for x in first.values():
        assert x["confidence"] == b.confidence and len(x["replicates"]) == b.resamples
        assert x["ciLow"] <= x["ciHigh"] and x["stderr"] >= 0
    adh = first["c16-s10-ddim-n2-g3-adherence"]
    assert adh["interval"] == "wilson" and 0 <= adh["ciLow"] <= adh["value"] <= adh["ciHigh"] <= 1
    assert r["interval"] == "bootstrap-centred-percentile" and r["stderr"] > 0
    assert r["ciLow"] <= r["value"] <= r["ciHigh"]
    from ladder_evaluator.prompts import load as load_prompts  # what was recorded, and how
    assert {k: r["settings"][k] for k in ("initialization", "ema", "samplingDtype", "textEncoder",
                                          "referenceStats")} == {
        "initialization": "compvis", "ema": "decay 0.9999, warm-up (1+n)/(10+n)", "samplingDtype": "float32",
        "textEncoder": "builtin-digits", "referenceStats": "computed from the reference set's images"}
    assert r["settings"]["referencePromptsSha256"] == load_prompts(run).sha256
    gone = {"promptsHash", "statsHash", "autoencoderHash"}  # the old second set, merged into provenance
    assert not (gone | {"textEncoderWeightsSha256"}) & set(r["settings"])  # builtin encoder: no weights
    assert main(args) == 0  # everything present: nothing recomputed, nothing written
    assert storage.list_files(str(results)) == objects
    assert main([*args, "--force"]) == 0  # recomputed: same seeds, same numbers, no duplicates
    again = _results(results)
    values = {k: v["value"] for k, v in first.items()}
    assert {k: v["value"] for k, v in again.items()} == pytest.approx(values)
    samples = sorted(Path(run.paths.samples).rglob("*.npz"))
    assert [p.name for p in samples] == ["ddim-n2-g1.npz", "ddim-n2-g3.npz"]
    with np.load(samples[0]) as z:
        assert z["images"].shape == (12, 8, 8, 1) and z["labels"].shape == (12,)
        assert str(z["sampler"]) == "ddim" and int(z["checkpoint_step"]) == 10


@pytest.mark.slow
def test_workers_split_the_grid_and_their_union_is_one_workers_results(trained, tmp_path, monkeypatch):
    """Two workers (as two pods of the Indexed evaluation Job: JOB_COMPLETION_INDEX) write into one
    results folder at once-or-in-turn; together they record exactly what one worker records, with
    the same values (common random numbers do not depend on who samples a point)."""
    out, run = trained
    split = run.model_copy(update={"evaluation": run.evaluation.model_copy(update={"workers": 2})})
    one, two = tmp_path / "one", tmp_path / "two"
    base = ["--checkpoint", run.paths.checkpoints, "--no-progress"]
    assert main(["--config", _write_config(tmp_path, run), "--results", str(one), *base]) == 0
    config = _write_config(tmp_path, split, "split.json")
    shares = []
    for index in ("1", "0"):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", index)
        before = set(_results(two))
        assert main(["--config", config, "--results", str(two), *base]) == 0
        shares.append(set(_results(two)) - before)
    assert shares[0] and shares[1] and not shares[0] & shares[1]  # each scored its own points
    alone, together = _results(one), _results(two)
    assert sorted(together) == sorted(alone)
    assert {k: v["value"] for k, v in together.items()} == pytest.approx(
        {k: v["value"] for k, v in alone.items()})
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")  # outside the partition: a clear user error
    assert main(["--config", config, "--results", str(two), *base]) == 2


@pytest.mark.slow
def test_inception_fid_and_clip_score_run_in_jax_and_say_so(trained, tmp_path):
    """The evaluator's default backends on the real Inception weights and a tiny random CLIP."""
    from tests.evaluator.standins import real_inception, tiny_clip

    _, run = trained
    stats = tmp_path / "inception-stats.npz"
    fid.save_stats(stats, np.random.default_rng(0).standard_normal(2048), np.eye(2048))
    (tmp_path / "clip").mkdir()
    clip_model, clip_weights = tiny_clip(tmp_path / "clip")
    ev = run.evaluation.model_copy(update={
        "metrics": [MetricName.fid, MetricName.clip], "fid_features": FidFeatures.inception,
        "inception_weights_uri": str(real_inception()),
        "clip_weights_uri": str(clip_weights), "guidance_scales": [1.0], "num_samples": 6,
        # each resample is one 2048-dimensional FID: 2 keep the test to seconds (intervals: grid test)
        "bootstrap": run.evaluation.bootstrap.model_copy(update={"resamples": 2})})
    data = run.data.model_copy(update={
        "reference_set": run.data.reference_set.model_copy(update={"stats_uri": str(stats)})})
    config = _write_config(tmp_path, run.model_copy(update={"evaluation": ev, "data": data}))
    results = tmp_path / "results"
    args = ["--config", config, "--checkpoint", run.paths.checkpoints, "--results", str(results)]
    assert main([*args, "--no-progress"]) == 0
    got = _results(results)
    assert sorted(got) == ["c16-s10-ddim-n2-g1-clip-score", "c16-s10-ddim-n2-g1-fid-inception"]
    for r in got.values():
        assert r["settings"]["metricsBackend"] == "jax" and r["numSamples"] == 6
    assert got["c16-s10-ddim-n2-g1-fid-inception"]["settings"]["features"] == "inception"
    assert got["c16-s10-ddim-n2-g1-clip-score"]["settings"]["clipModel"] == clip_model
    assert got["c16-s10-ddim-n2-g1-fid-inception"]["value"] > 0


def test_missing_checkpoint_exits_2_naming_it(trained, tmp_path, capsys):
    _, run = trained
    config = _write_config(tmp_path, run)
    assert main(["--config", config, "--checkpoint", str(tmp_path / "nope"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint found at" in err and str(tmp_path / "nope") in err and "Traceback" not in err


def test_final_before_training_ends_exits_2_naming_training_steps(trained, tmp_path, capsys):
    """"final" is training.steps: a run stopped at step 10 of 20 is not scored as final."""
    _, run = trained
    longer = run.model_copy(update={"training": run.training.model_copy(update={"steps": 20})})
    config = _write_config(tmp_path, longer)
    code = main(["--config", config, "--checkpoint", run.paths.checkpoints, "--results",
                 str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "training.steps = 20" in err and "newest: step 10" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_missing_inception_weights_exits_2_naming_the_path(trained, tmp_path, capsys):
    out, run = trained
    weights = tmp_path / "weights" / "inception-2015-12-05.pt"
    bad = run.model_copy(update={"evaluation": run.evaluation.model_copy(
        update={"fid_features": FidFeatures.inception, "inception_weights_uri": str(weights)})})
    config = _write_config(tmp_path, bad)
    code = main(["--config", config, "--checkpoint", run.paths.checkpoints, "--results",
                 str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and str(weights) in err and "inceptionWeightsUri" in err


def test_reference_stats_of_the_wrong_dimension_exit_2(trained, tmp_path, capsys):
    _, run = trained
    stats = tmp_path / "inception-stats.npz"
    fid.save_stats(stats, np.zeros(2048), np.eye(2048, dtype=np.float32))
    bad = run.model_copy(update={"data": run.data.model_copy(update={
        "reference_set": run.data.reference_set.model_copy(update={"stats_uri": str(stats)})})})
    config = _write_config(tmp_path, bad)
    code = main(["--config", config, "--checkpoint", run.paths.checkpoints, "--results",
                 str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "2048" in err and "64-dimensional" in err


def test_bad_config_exits_2(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"width": "x"}')
    assert main(["--config", str(tmp_path / "bad.json"), "--checkpoint", "x", "--no-progress"]) == 2
    assert "bad.json" in capsys.readouterr().err


@pytest.mark.slow
def test_in_a_cluster_results_go_to_storage_and_progress_to_the_status(trained, tmp_path, monkeypatch):
    """--status cluster: the results land in the run's results folder, as outside a cluster; the
    status gets only this size's progress report, applied by its own field manager; a re-run
    skips what storage holds and writes nothing."""
    from ladder_testing.apiserver.client import Http
    from ladder_testing.apiserver.fixture import running_apiserver

    _, run = trained
    one = run.model_copy(update={"evaluation": run.evaluation.model_copy(
        update={"guidance_scales": [1.0], "metrics": ["adherence"]})})
    config = _write_config(tmp_path, one)
    with running_apiserver(tmp_path / "api") as api:
        http = Http(api.url)
        path = f"/apis/ladder.dev/v1alpha1/namespaces/{run.experiment.namespace}/scalingexperiments"
        assert http.post(path, {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment",
                                "metadata": {"name": run.experiment.name}, "spec": {}})[0] == 201
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig))
        args = ["--config", config, "--checkpoint", run.paths.checkpoints, "--status", "cluster",
                "--no-progress"]
        assert main(args) == 0
        assert [r.id for r in artifacts.read_results(run.paths.results)] == ["c16-s10-ddim-n2-g1-adherence"]
        _, obj = http.get(f"{path}/{run.experiment.name}")
        assert "results" not in obj["status"]
        (size,) = obj["status"]["sizes"]
        assert size["width"] == 16 and size["evaluator"]["recorded"] == 1 and size["evaluator"]["writtenAt"]
        (entry,) = artifacts.read_results(run.paths.results)  # of record: interval and replicates
        assert entry.ci_low <= entry.value <= entry.ci_high and entry.replicates
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert any(m.startswith("ladder-evaluator-c16-") for m in managers), managers
        rv = obj["metadata"]["resourceVersion"]
        objects = storage.list_files(run.paths.results)
        assert main(args) == 0  # already there: nothing written, nothing applied
        assert http.get(f"{path}/{run.experiment.name}")[1]["metadata"]["resourceVersion"] == rv
        assert storage.list_files(run.paths.results) == objects


def test_an_api_server_that_stays_away_does_not_stop_the_evaluation(trained, tmp_path, monkeypatch, caplog):
    """No API server behind the kubeconfig: the progress report is retried with backoff
    (shortened here) and then given up, the evaluation finishes and its results are in storage
    (the evaluation JobSet's completion wakes the operator)."""
    from ladder_evaluator import status_store
    from ladder_kube.retry import Backoff
    from ladder_testing.apiserver.fixture import free_port, write_kubeconfig

    _, run = trained
    one = run.model_copy(update={"evaluation": run.evaluation.model_copy(
        update={"guidance_scales": [1.0], "metrics": ["adherence"]})})
    config = _write_config(tmp_path, one)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")))
    monkeypatch.setattr(status_store, "RETRY", Backoff(first_s=0.01, max_s=0.02, budget_s=0.1))
    code = main(["--config", config, "--checkpoint", run.paths.checkpoints, "--status", "cluster",
                 "--no-progress", "--force"])
    assert code == 0
    assert "c16-s10-ddim-n2-g1-adherence" in {r.id for r in artifacts.read_results(run.paths.results)}
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 3 and "progress report to the experiment's status failed" in caplog.text


def test_sizes_of_one_experiment_share_the_classifier_cache(tmp_path, monkeypatch):
    """The digits classifier depends on the data only: one training serves every size."""
    from ladder_evaluator.evaluate import cache_dir
    from tests.local.conftest import tiny_experiment

    a, b = expand(tiny_experiment("one"), output_uri=str(tmp_path)).runs
    other = expand(tiny_experiment("two"), output_uri=str(tmp_path)).runs[0]
    assert cache_dir(a) == cache_dir(b) == tmp_path / "one" / "eval-cache"
    assert cache_dir(other) != cache_dir(a)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    a, b = expand(tiny_experiment("one"), output_uri="gs://bucket/x").runs
    assert cache_dir(a) == cache_dir(b) == tmp_path / "xdg" / "ladder" / "default" / "one"


def test_several_noise_seeds_give_the_mean_and_the_between_seed_spread(trained, tmp_path):
    """evaluation.seeds: 2 on one grid point: the recorded value is the mean of the two seeds'
    values, which differ (different starting noise), and their spread is recorded beside the
    bootstrap interval."""
    _, run = trained
    two = run.model_copy(update={"evaluation": run.evaluation.model_copy(
        update={"guidance_scales": [1.0], "metrics": ["adherence"], "seeds": 2})})
    results = tmp_path / "results"
    assert main(["--config", _write_config(tmp_path, two), "--checkpoint", run.paths.checkpoints,
                 "--results", str(results), "--no-progress"]) == 0
    (r,) = artifacts.read_results(str(results))
    assert len(r.seed_values) == 2 and r.value == pytest.approx(sum(r.seed_values) / 2)
    assert r.seed_spread == pytest.approx(abs(r.seed_values[0] - r.seed_values[1]) / 2 ** 0.5)
    assert r.settings["seeds"] == "2" and r.ci_low <= r.value <= r.ci_high
    assert len(r.replicates) == two.evaluation.bootstrap.resamples
