"""`python -m ladder_trainer --config RUN.json`: train one size of the ladder.

Order matters: everything that can be a user error (the config, the data URI, the mesh, a
checkpoint of another model) is checked before the first compile, so a bad input costs seconds
and exits USER_ERROR (2), which the podFailurePolicy does not restart. SIGTERM (preemption, a
JobSet restart, `ladder run` being stopped) finishes the step in flight, saves (unless that step
is already saved), and exits RESTARTABLE (42). Restarting resumes from the newest readable
checkpoint, with the data stream at the same position, so the trajectory is the one an
uninterrupted run takes.

Other failures exit as ladder_api.failures classifies them: an infrastructure fault (a transient
GCS error, a peer host gone, the coordinator not reached) RESTARTABLE, so the JobSet restarts and
resumes; a user error USER_ERROR; anything else 1 with its traceback (a bug: not restarted).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ladder_api import exitcodes, failures, storage
from ladder_api.errors import UserError
from ladder_api.loading import load_run_config
from ladder_api.plan import RunConfig

log = logging.getLogger("ladder_trainer")


class StopFlag:
    """Set by SIGTERM/SIGINT; checked between steps (the step in flight always completes)."""

    def __init__(self):
        self.event = threading.Event()
        self.signal = None

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.signal = signum
        self.event.set()


def _pause_for_signal(step: int, stop: StopFlag) -> None:
    """Test hook (LADDER_TRAINER_PAUSE_AT_STEP=K): at step K announce it in the file
    LADDER_TRAINER_PAUSE_MARKER and wait (up to 120 s) for a real signal, so a test can preempt
    the trainer at an exact step without racing it."""
    if os.environ.get("LADDER_TRAINER_PAUSE_AT_STEP") != str(step):
        return
    marker = os.environ.get("LADDER_TRAINER_PAUSE_MARKER")
    if marker:
        Path(marker).write_text(str(step))
    stop.event.wait(timeout=120)


def setup_compilation_cache(uri: str | None) -> None:
    """JAX's persistent cache: a restarted or preempted run does not pay for compilation again."""
    if not uri:
        return
    import jax

    if not storage.is_remote(uri):
        uri = str(storage.local_path(uri))
        os.makedirs(uri, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", uri)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _status_reporter(run: RunConfig, mode: str):
    from ladder_trainer import status_report

    if mode == "off" or (mode == "auto" and not status_report.in_cluster()):
        return None
    return status_report.ClusterReporter(run.experiment.name, run.experiment.namespace, run.width)


def train(
    run: RunConfig, stop: StopFlag | None = None, status: str = "auto", max_steps: int | None = None
) -> int:
    """Train run to run.training.steps (or max_steps, for tests); returns an exit code."""
    import jax

    from ladder_api.artifacts import MetricsWriter
    from ladder_trainer import checkpointing, sharding
    from ladder_trainer.data.reader import BatchStream, open_data
    from ladder_trainer.metrics import mfu, peak_flops_per_device
    from ladder_trainer.optim import lr_schedule
    from ladder_trainer.train_step import _train_step, abstract_state

    stop = stop or StopFlag()
    setup_compilation_cache(run.training.compilation_cache_uri)
    sharding.maybe_initialize_distributed(timeout_s=run.training.distributed_init_timeout_seconds)
    lead = jax.process_index() == 0
    t = run.training

    # --- checks before compute -------------------------------------------------------------
    data = open_data(run.data, run.model)
    mesh = sharding.make_mesh(t.sharding)
    n_dev = mesh.devices.size
    if t.global_batch % n_dev:
        raise UserError(f"training.globalBatch {t.global_batch} is not divisible by the {n_dev} devices")
    abstract = abstract_state(run, data.null_context.shape)
    shardings = sharding.tree_shardings(abstract, mesh)
    ckpt_uri = run.paths.checkpoints
    # The interval is applied here (orbax would also save the first step of every process).
    mngr = checkpointing.manager(ckpt_uri, keep=t.checkpoint.keep)

    state, start, last_ckpt = _initial_state(run, data, abstract, shardings, mngr, lead)
    total = t.steps if max_steps is None else min(t.steps, max_steps)

    meta_base = {
        "run": run.name, "width": run.width, "params": run.model.params, "recipe_hash": run.recipe_hash,
        "model": checkpointing.model_signature(run.model), "autoencoder": data.autoencoder,
        "text_encoder": data.text_encoder, "data_uri": data.uri, "data_identity": data.identity,
    }
    metrics_file = MetricsWriter(run.paths.metrics, start) if lead else None
    reporter = _status_reporter(run, status) if lead else None
    stream = BatchStream(data.source, t.global_batch, t.seed, jax.process_index(), jax.process_count())
    step_fn = sharding.sharded_train_step(_train_step, shardings, mesh)
    key = jax.random.key(t.seed)
    lr_fn = lr_schedule(t)
    peak = peak_flops_per_device() * n_dev if lead else 1.0
    progress = _progress(lead, start, total)

    def save(step: int, force: bool) -> bool:
        return checkpointing.save(mngr, step, state, {**meta_base, "data_position": step}, force=force)

    def should_stop(step: int) -> bool:
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            return multihost_utils.reached_preemption_sync_point(step)
        return stop.requested

    def ckpt_fields(ckpt_step):
        if ckpt_step is None:
            return {}
        return {"checkpoint_step": ckpt_step, "checkpoint_uri": storage.join(ckpt_uri, str(ckpt_step))}

    window_start, window_steps = time.perf_counter(), 0
    step = start
    while step < total:
        _pause_for_signal(step, stop)
        if should_stop(step):
            save(step, force=True)  # no-op when this step is the one just saved or restored
            mngr.wait_until_finished()
            if lead:
                metrics_file.flush()
                log.warning("stop requested (signal %s): step %d is checkpointed in %s; exiting %d",
                            stop.signal, step, ckpt_uri, exitcodes.RESTARTABLE)
            mngr.close()
            stream.close()
            return exitcodes.RESTARTABLE
        batch = sharding.put_batch(stream.batch(step), mesh)
        state, metrics = step_fn(state, batch, jax.random.fold_in(key, step))
        step += 1
        window_steps += 1
        if (step % t.checkpoint.interval_steps == 0 or step == total) and save(step, force=True):
            last_ckpt = step
        if step % t.log_every_steps == 0 or step == total:
            loss = float(metrics["loss"])  # waits for the step: the window's time is real
            elapsed = time.perf_counter() - window_start
            ex_s = window_steps * t.global_batch / max(elapsed, 1e-9)
            record = {
                "step": step, "loss": loss, "lr": float(lr_fn(step - 1)),
                "grad_norm": float(metrics["grad_norm"]), "examples_per_s": ex_s,
                "mfu": mfu(ex_s, run.model.gflops_per_forward, peak), "time": time.time(),
            }
            if lead:
                metrics_file.write(record)
                progress(record)
                if reporter is not None:
                    reporter.report(step=step, total_steps=t.steps, loss=loss, **ckpt_fields(last_ckpt))
            window_start, window_steps = time.perf_counter(), 0
    mngr.wait_until_finished()
    mngr.close()
    stream.close()
    if lead:
        metrics_file.flush()
    if lead and reporter is not None:
        reporter.report(step=step, total_steps=t.steps, **ckpt_fields(last_ckpt))
    return exitcodes.OK


def _initial_state(run: RunConfig, data, abstract, shardings, mngr, lead: bool):
    """(state, first step, its checkpoint step or None): the newest readable checkpoint restored
    onto this run's mesh (whichever sharding or slice saved it), else a fresh state made directly
    in its shards."""
    import numpy as np

    from ladder_trainer import checkpointing, sharding
    from ladder_trainer.train_step import TrainState, init_state

    uri = run.paths.checkpoints
    restored = checkpointing.restore_latest(
        mngr,
        {k: checkpointing.placed(getattr(abstract, k), getattr(shardings, k))
         for k in checkpointing.ARRAY_ITEMS},
        lambda meta: checkpointing.check_compatible(meta, run.model, uri),
        uri,
    )
    if restored is None:
        return init_state(run, run.training.seed, data.null_context, abstract.config, shardings), 0, None
    for s, why in restored.skipped:
        log.warning("skipped checkpoint step %d at %s: %s", s, uri, why[:300])
    state = TrainState(
        step=sharding.put_global(np.int32(restored.step), shardings.step),
        params=restored.items["params"],
        ema_params=restored.items["ema_params"],
        opt_state=restored.items["opt_state"],
        null_context=sharding.put_global(np.asarray(data.null_context, np.float32), shardings.null_context),
        config=abstract.config,
    )
    if lead:
        log.info("resumed from %s step %d", uri, restored.step)
    return state, int(restored.meta.get("data_position", restored.step)), restored.step


def _progress(lead: bool, start: int, total: int):
    """tqdm on a terminal; plain log lines otherwise (pods, `ladder run` logs)."""
    if not lead:
        return lambda record: None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

        def update(record):
            bar.update(record["step"] - bar.n)
            bar.set_postfix(loss=f"{record['loss']:.4f}", ex_s=f"{record['examples_per_s']:.0f}",
                            mfu=f"{100 * record['mfu']:.1f}%")
            if record["step"] >= total:
                bar.close()

        return update

    def line(record):
        log.info("step %d/%d loss %.4f examples/s %.1f mfu %.1f%%", record["step"], total, record["loss"],
                 record["examples_per_s"], 100 * record["mfu"])

    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ladder_trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="RunConfig JSON (`ladder plan` writes one per size)")
    parser.add_argument("--status", choices=["auto", "cluster", "off"], default="auto",
                        help="report progress into the experiment's status (auto: when in a cluster)")
    parser.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it renames
    stop = StopFlag()
    stop.install()
    try:
        run = load_run_config(args.config)
        return train(run, stop, args.status, args.max_steps)
    except Exception as err:  # noqa: BLE001 - every failure gets the exit code its kind needs
        return failures.report(err, log)
