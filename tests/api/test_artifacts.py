"""The run's files (ladder_api.artifacts) on a local folder and on gs:// (fake-gcs-server):
results from concurrent writers all read back, none lost, newest winning by id; metrics
followed incrementally; orbax's finished checkpoints told from unfinished ones."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from ladder_api import artifacts, storage
from ladder_api.errors import UserError
from ladder_api.frontier import sampling_cost
from ladder_api.loading import load_experiment
from ladder_api.plan import expand
from ladder_api.status import Result, result_id
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def bucket(gcs):
    return gcs.bucket("artifacts-test")


@pytest.fixture(params=["local", "gs"])
def root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "exp")
    return f"{request.getfixturevalue('bucket')}/{uuid.uuid4().hex[:8]}"


def res(width: int, i: int, value: float = 1.0) -> Result:
    steps = 4 + i
    paper, with_g = sampling_cost(0.1, steps, 2.0)
    return Result(
        id=result_id(width, 100, "ddim", steps, 2.0, "fid-inception"), width=width, checkpoint_step=100,
        sampler="ddim", steps=steps, guidance=2.0, metric="fid-inception", value=value, num_samples=10,
        gflops_per_forward=1.0, sampling_cost=paper, sampling_cost_with_guidance=with_g,
    )


def test_concurrent_writers_lose_nothing(root):
    """Eight evaluators writing batches into one results folder at once: every entry is read
    back, each exactly once, and no writer ever rewrote another's object."""
    prefix = storage.join(root, "c8", artifacts.RESULTS_DIR)
    writers, batches, per_batch = 8, 5, 3
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def evaluator(k: int) -> None:
        try:
            out = artifacts.ResultsWriter(prefix)
            start.wait()
            for b in range(batches):
                out.write([res(8, 1000 * k + per_batch * b + j) for j in range(per_batch)])
        except BaseException as err:  # noqa: BLE001 (asserted below)
            errors.append(err)

    threads = [threading.Thread(target=evaluator, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = artifacts.read_results(prefix)
    assert len(got) == len({r.id for r in got}) == writers * batches * per_batch
    written = {res(8, 1000 * k + i).id for k in range(writers) for i in range(batches * per_batch)}
    assert {r.id for r in got} == written
    assert len(storage.list_files(prefix)) == writers * batches  # one object per write


def test_the_newest_write_wins_and_rewrites_are_idempotent(root):
    prefix = storage.join(root, "c8", artifacts.RESULTS_DIR)
    first, second = artifacts.ResultsWriter(prefix), artifacts.ResultsWriter(prefix)
    assert first.writer_id < second.writer_id  # later writers sort later
    first.write([res(8, 0, 1.0), res(8, 1, 1.0)])
    second.write([res(8, 0, 2.0)])  # e.g. a --force re-evaluation
    first.write([res(8, 1, 3.0)])
    values = {r.id: r.value for r in artifacts.read_results(prefix)}
    assert values == {res(8, 0).id: 2.0, res(8, 1).id: 3.0}
    artifacts.ResultsWriter(prefix).write([res(8, 0, 2.0), res(8, 1, 3.0)])  # the same results again
    assert {r.id: r.value for r in artifacts.read_results(prefix)} == values
    assert artifacts.ResultsWriter(prefix).write([]) is None  # nothing to write: no object


def test_a_poller_reads_each_object_once(root, monkeypatch):
    """Objects are write-once, so a reader that polls (the runner, every few seconds) fetches only
    what appeared since its last poll: at the paper's scale, one listing per size and poll."""
    prefix = storage.join(root, "c8", artifacts.RESULTS_DIR)
    out = artifacts.ResultsWriter(prefix)
    reads: list[str] = []
    real = storage.read_bytes
    monkeypatch.setattr(storage, "read_bytes", lambda uri, start=0: reads.append(uri) or real(uri, start))
    reader = artifacts.ResultsReader(prefix)
    assert reader.poll() == {}
    for i in range(3):
        out.write([res(8, i)])
    assert len(reader.poll()) == 3
    n = len(reads)
    out.write([res(8, 3)])
    assert len(reader.poll()) == 4 and len(reads) == n + 1
    assert len(reader.poll()) == 4 and len(reads) == n + 1


def test_paper_scale_fits_one_listing_per_size():
    """The paper's 3,168 results (11 sizes x 3 samplers x 6 step counts x 8 guidance scales x 2
    metrics), and the example's whole grid (with 7.5 and the steps the budgets derive per size),
    one object per grid point as the evaluator writes them: each size's objects fit one listing
    page (1,000 names), so the results of record cost a listing per size to poll."""
    from ladder_api.grid import run_grid_points

    plan = expand(load_experiment(EXAMPLES / "paper-v5e.yaml"))
    ev = plan.runs[0].evaluation
    assert ev.checkpoints == "final"
    paper = len(ev.samplers) * len(ev.steps) * len(ev.best_of_guidance_scales())
    assert len(plan.runs) * paper * len(ev.metrics) == 3168
    per_size = [len(run_grid_points(run)) for run in plan.runs]
    assert all(n > paper for n in per_size) and max(per_size) < 1000, per_size


def test_a_corrupt_results_object_is_named(root):
    prefix = storage.join(root, "c8", artifacts.RESULTS_DIR)
    storage.write_text(storage.join(prefix, "x-000001.json"), "{not json")
    with pytest.raises(UserError, match=r"x-000001.json is not a Ladder results file.*move it out"):
        artifacts.read_results(prefix)


def test_results_written_before_the_results_folder_are_still_read(root):
    """Run directories from before results/ held one rewritten results.json per size."""
    size = storage.join(root, "c8")
    storage.write_text(storage.join(size, artifacts.LEGACY_RESULTS_FILE),
                       json.dumps([res(8, 0, 1.0).to_wire(), res(8, 1, 1.0).to_wire()]))
    prefix = storage.join(size, artifacts.RESULTS_DIR)
    artifacts.ResultsWriter(prefix).write([res(8, 1, 5.0)])
    assert {r.id: r.value for r in artifacts.read_results(prefix)} == {res(8, 0).id: 1.0, res(8, 1).id: 5.0}
    elsewhere = storage.join(size, "mine")  # an evaluator's --results folder of another name
    assert artifacts.read_results(elsewhere) == []


def test_evaluator_store_skips_what_any_writer_recorded(root):
    prefix = storage.join(root, "c8", artifacts.RESULTS_DIR)
    artifacts.ResultsWriter(prefix).write([res(8, 0)])
    store = artifacts.ResultsStore(prefix)
    assert set(store.existing()) == {res(8, 0).id}
    store.write([res(8, 1)])
    assert set(store.existing()) == {res(8, 0).id, res(8, 1).id}


def test_metrics_resume_drops_unsaved_lines_and_a_tail_follows(root):
    uri = storage.join(root, "c8", artifacts.METRICS_FILE)
    tail = artifacts.MetricsTail(uri)
    assert tail.poll() == []
    w = artifacts.MetricsWriter(uri, resume_step=0, min_interval_s=0)
    for step in (1, 2, 3):
        w.write({"step": step, "loss": 1.0 / step})
    assert [r["step"] for r in tail.poll()] == [1, 2, 3] and tail.poll() == []
    resumed = artifacts.MetricsWriter(uri, resume_step=2, min_interval_s=0)  # checkpoint at 2
    resumed.write({"step": 3, "loss": 0.5})
    resumed.write({"step": 4, "loss": 0.25})
    assert [r["step"] for r in artifacts.read_metrics(uri)] == [1, 2, 3, 4]
    # the tail notices that its last line (step 3, loss 1/3) is gone and reads the file again
    assert [(r["step"], r["loss"]) for r in tail.poll()] == [(1, 1.0), (2, 0.5), (3, 0.5), (4, 0.25)]
    assert tail.last == {"step": 4, "loss": 0.25}
    resumed.write({"step": 5, "loss": 0.125})
    assert [r["step"] for r in tail.poll()] == [5]


def test_metrics_writes_are_spaced_and_flushed(root):
    """On GCS an object takes about one write a second: lines written faster wait for flush()."""
    uri = storage.join(root, artifacts.METRICS_FILE)
    w = artifacts.MetricsWriter(uri, resume_step=0, min_interval_s=3600)
    for step in (1, 2, 3):
        w.write({"step": step})
    assert [r["step"] for r in artifacts.read_metrics(uri)] == [1]
    w.flush()
    assert [r["step"] for r in artifacts.read_metrics(uri)] == [1, 2, 3]
    spaced = artifacts.METRICS_MIN_INTERVAL_S if storage.is_remote(uri) else 0.0
    assert artifacts.MetricsWriter(uri, resume_step=3).min_interval_s == spaced


def test_only_finished_checkpoints_count(root):
    """As orbax leaves them: locally a finished step is a renamed folder; on GCS a folder with the
    commit marker (a step still being written has no marker yet)."""
    ckpt = storage.join(root, "c8", artifacts.CHECKPOINTS_DIR)
    remote = storage.is_remote(ckpt)
    for step, done in ((2, True), (4, True), (6, False)):
        if remote:
            storage.write_text(storage.join(ckpt, str(step), "params"), "x")
            if done:
                storage.write_text(storage.join(ckpt, str(step), artifacts.COMMIT_MARKER), "")
        else:
            name = str(step) if done else f"{step}.orbax-checkpoint-tmp-1700000000"
            storage.write_text(storage.join(ckpt, name, "params"), "x")
    storage.write_text(storage.join(ckpt, "8"), "a file, not a step")
    seen: set[int] = set()
    assert artifacts.checkpoint_steps(ckpt, seen) == [2, 4]
    storage.delete_prefix(storage.join(ckpt, "2"))  # orbax's keep removed it
    assert artifacts.checkpoint_steps(ckpt, seen) == [4]
    assert artifacts.checkpoint_steps(storage.join(root, "none")) == []


def test_status_round_trip_and_a_corrupt_one_is_named(tmp_path):
    from ladder_api.status import ScalingExperimentStatus

    assert artifacts.read_status(tmp_path) is None
    status = ScalingExperimentStatus.model_validate(
        {"phase": "Running", "sizes": [{"width": 8, "measurements": {"recorded": 3, "expected": 4}}]})
    artifacts.write_status(tmp_path, status)
    assert artifacts.read_status(tmp_path) == status
    (tmp_path / artifacts.STATUS_FILE).write_text("{")
    with pytest.raises(UserError, match="status.json is not a Ladder status file"):
        artifacts.read_status(tmp_path)


def test_a_size_folder_holds_every_path():
    p = artifacts.size_paths("gs://b/exp/tiny", 64)
    assert p.root == "gs://b/exp/tiny/c64"
    assert (p.checkpoints, p.metrics, p.results, p.samples) == (
        "gs://b/exp/tiny/c64/checkpoints", "gs://b/exp/tiny/c64/metrics.jsonl", "gs://b/exp/tiny/c64/results",
        "gs://b/exp/tiny/c64/samples")
