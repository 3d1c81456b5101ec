#!/usr/bin/env python3
"""A stand-in for `python -m ladder_trainer` / `python -m ladder_evaluator` in the runner's
process-management tests: it speaks the same files (checkpoint step folders as orbax leaves them
on a file system or on GCS, metrics lines, results objects, through ladder_api's storage layer, so
on local paths and gs:// alike) and the same signals (SIGTERM -> save -> exit 42), with no JAX,
so the tests of resume, skip and interruption run in a second. The real entry points are
exercised by the end-to-end quickstart test.

Invoked as: fake_pods.py -m ladder_trainer --config C
        or: fake_pods.py -m ladder_evaluator --config C --checkpoint D
        or: fake_pods.py -m ladder_cli prepare ...: the real `ladder prepare` (exec'd), unless
            FAKE_PREPARE_FAIL gives the exit code to fail with
Env: FAKE_LOG (a file each invocation appends "<module> c<width> start=<step>" to),
     FAKE_BLOCK_AT (trainer: after this step, wait for SIGTERM), FAKE_FAIL (exit code for the trainer).
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "api"))
from ladder_api import artifacts, storage  # noqa: E402
from ladder_api.frontier import sampling_cost  # noqa: E402
from ladder_api.grid import grid_points, metric_names, select_checkpoints, worker_share  # noqa: E402
from ladder_api.plan import RunConfig  # noqa: E402
from ladder_api.status import Result  # noqa: E402


def arg(name):
    return sys.argv[sys.argv.index(name) + 1]


def save(ckpt: str, step: int):
    """As orbax finishes a step: rename a temporary folder locally, a commit marker on GCS."""
    if storage.is_remote(ckpt):
        storage.write_text(storage.join(ckpt, str(step), "meta"), json.dumps({"step": step}))
        storage.write_text(storage.join(ckpt, str(step), artifacts.COMMIT_MARKER), "done")
        return
    d = Path(ckpt)
    tmp = d / f"{step}.orbax-checkpoint-tmp-1"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "meta").write_text(json.dumps({"step": step}))
    tmp.rename(d / str(step))


def train(run: RunConfig):
    ckpt = run.paths.checkpoints
    have = artifacts.checkpoint_steps(ckpt)
    start = max(have) if have else 0
    log(f"ladder_trainer c{run.width} start={start}")
    if os.environ.get("FAKE_FAIL"):
        print("fake trainer: failing on purpose", flush=True)
        sys.exit(int(os.environ["FAKE_FAIL"]))
    state = {"step": start}

    def on_term(*_):
        save(ckpt, state["step"])
        sys.exit(42)

    signal.signal(signal.SIGTERM, on_term)
    block = int(os.environ.get("FAKE_BLOCK_AT", "0") or 0)
    metrics = artifacts.MetricsWriter(run.paths.metrics, start, min_interval_s=0)
    for step in range(start + 1, run.training.steps + 1):
        state["step"] = step
        metrics.write({"step": step, "loss": 1.0 / step, "lr": 0.001, "examples_per_s": 100.0,
                       "mfu": 0.0, "time": time.time()})
        if step % run.training.checkpoint.interval_steps == 0 or step == run.training.steps:
            save(ckpt, step)
        if block and step == block:
            while True:
                signal.pause()


def evaluate(run: RunConfig):
    worker = int(arg("--worker")) if "--worker" in sys.argv else 0
    log(f"ladder_evaluator c{run.width} start=0" + (" force" if "--force" in sys.argv else "")
        + (f" worker={worker}" if "--worker" in sys.argv else ""))
    store = artifacts.ResultsStore(run.paths.results)
    # --force: measure everything again (newer objects win by id, as with the real evaluator)
    have = set() if "--force" in sys.argv else set(store.existing())
    ev = run.evaluation
    available = artifacts.checkpoint_steps(arg("--checkpoint"))
    out = []
    steps = select_checkpoints(ev, run.training.steps, available, "--checkpoint")
    share = worker_share([(s, p) for s in steps for p in grid_points(ev)], ev.workers, worker)
    for step, p in share:
        for metric in metric_names(ev):
            if p.result_id(run.width, step, metric) not in have:
                out.append(fake_result(run, step, p, metric))
    for i in range(0, len(out), 4):  # several writes, as the real evaluator writes per grid point
        store.write(out[i:i + 4])


def fake_result(run: RunConfig, step: int, p, metric: str) -> Result:
    paper, with_guidance = sampling_cost(run.model.normalized_cost, p.steps, p.guidance)
    value = 100.0 / (run.width * p.steps) if metric.startswith("fid") else 0.5
    return Result(id=p.result_id(run.width, step, metric), width=run.width, checkpoint_step=step,
                  sampler=p.sampler, steps=p.steps, guidance=p.guidance, metric=metric, value=value,
                  num_samples=10, gflops_per_forward=run.model.gflops_per_forward, sampling_cost=paper,
                  sampling_cost_with_guidance=with_guidance)


def log(line):
    if os.environ.get("FAKE_LOG"):
        with open(os.environ["FAKE_LOG"], "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    module = arg("-m")
    if module == "ladder_cli":
        log("ladder_cli " + " ".join(sys.argv[3:5]))
        if os.environ.get("FAKE_PREPARE_FAIL"):
            print("ladder prepare: failing on purpose", flush=True)
            sys.exit(int(os.environ["FAKE_PREPARE_FAIL"]))
        os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
    run = RunConfig.model_validate_json(Path(arg("--config")).read_text())
    if module == "ladder_trainer":
        train(run)
    else:
        evaluate(run)
