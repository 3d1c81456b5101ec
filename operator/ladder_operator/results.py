"""The results of record as the operator reads them: incrementally, and only when woken.

Why the operator computes the status digest at all is in ladder_api.digest. Here is how it reads:

- Per experiment and size, an artifacts.ResultsReader keeps every result object it has read, by
  object name (objects are write-once), so a read is one listing plus the objects written since.
- A size is read again only when its trigger changed since its last read: the evaluator's
  progress report in the size's status entry (`sizes[].evaluator`, written after each results
  write) or the size's evaluation JobSet (its resourceVersion). Reconciles for anything else
  (training progress, the operator's own writes, a spec edit) reuse what was read. An idle
  operator, and one whose sizes are only training, therefore makes no storage requests; the
  first reconcile of an experiment after the operator starts reads every size once.
- Storage is gs://: validation (ladder_api.validation, Target.cluster) sets any other
  outputUri Invalid before a run config exists, so the operator reads what the pods write.
- A read that fails (bucket unreachable, permission refused) keeps what was read before and
  leaves the trigger as it was, so the next trigger reads again; when nothing was ever read the
  digest is unknown and the status keeps the one it has (reconcile.status.with_digest).
- Each run's config is written beside its files (artifacts.write_run_config) once per spec this
  process sees, so the storage root alone is enough for `ladder report gs://...`.

Upgrade: operators before the digest kept results in `status.results`. While an old status still
shows them (until the API server prunes them: the new CRD does not declare them), they are copied
once into each size's results folder as one write-once object whose name sorts
before every evaluator's, so anything measured since wins over them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ladder_api import artifacts, digest, storage
from ladder_api.errors import UserError
from ladder_api.plan import RunConfig
from ladder_api.status import Result

log = logging.getLogger("ladder.operator")

Key = tuple[str, str]
IO_WORKERS = 8  # storage requests of one experiment's reconcile made at once
LEGACY_OBJECT = "0-status-results-{uid}.json"  # sorts before "<UTC time>-<host>-..." writer ids


class ResultsUnreadable(Exception):  # noqa: N818 (reads as a state at the call site)
    """No digest can be computed: a size's results were never read and cannot be now."""


@dataclass
class _Size:
    reader: artifacts.ResultsReader
    trigger: object = None
    results: dict[str, Result] | None = None  # None until read once


@dataclass
class _Experiment:
    sizes: dict[tuple[int, str], _Size] = field(default_factory=dict)  # (width, prefix) -> size
    configs_written: str | None = None  # spec hash whose run configs are in storage
    migrated: str | None = None  # uid whose status.results were copied to storage


def _read(run: RunConfig, size: _Size, trigger: object) -> None:
    """Read the size's new result objects; on failure keep what was read before, if anything."""
    try:
        size.results = size.reader.poll()
        size.trigger = trigger
    except (UserError, OSError) as err:
        if size.results is None:
            raise ResultsUnreadable(f"cannot read {run.paths.results}: {err}") from None
        log.warning("reading %s failed (%s); using what was read before", run.paths.results, err)


def _write_config(run: RunConfig) -> bool:
    """Record the run's config beside its files (artifacts.write_run_config); False if it failed."""
    try:
        artifacts.write_run_config(run)
        return True
    except (UserError, OSError) as err:
        log.warning("could not record the run config under %s: %s", run.paths.root, err)
        return False


class ResultsCache:
    """What the operator has read of each experiment's results (see the module docstring)."""

    def __init__(self) -> None:
        self._experiments: dict[Key, _Experiment] = {}
        # Long-lived threads: each keeps its storage client and connection (a new one costs
        # ~40 ms, a request on an open one a few).
        self._pool = ThreadPoolExecutor(IO_WORKERS, thread_name_prefix="ladder-results")

    def forget(self, key: Key) -> None:
        self._experiments.pop(key, None)

    def digest(
        self, key: Key, runs: Sequence[RunConfig], triggers: Mapping[int, object], *,
        uid: str = "", legacy: object = None,
    ) -> digest.Digest:
        """The digest of every run's results of record. Blocking (storage I/O): call it from a
        thread. Raises ResultsUnreadable when a size was never read and cannot be read now."""
        exp = self._experiments.setdefault(key, _Experiment())
        migrated = self._migrate(exp, runs, uid, legacy)
        sizes = {run.width: exp.sizes.setdefault((run.width, run.paths.results),
                                                 _Size(artifacts.ResultsReader(run.paths.results)))
                 for run in runs}
        stale = [run for run in runs if sizes[run.width].results is None
                 or sizes[run.width].trigger != triggers.get(run.width) or run.width in migrated]
        spec_hash = runs[0].spec_hash if runs else None
        configs = list(runs) if exp.configs_written != spec_hash else []
        # Each size's requests are independent round trips: made at once, a new experiment's
        # first reconcile costs about one round trip of latency instead of one per request.
        wrote = [self._pool.submit(_write_config, run) for run in configs]
        read = [self._pool.submit(_read, run, sizes[run.width], triggers.get(run.width)) for run in stale]
        if configs and all([f.result() for f in wrote]):
            exp.configs_written = spec_hash
        for future in read:
            future.result()
        wanted = {(run.width, run.paths.results) for run in runs}
        exp.sizes = {k: v for k, v in exp.sizes.items() if k in wanted}  # widths gone, prefixes moved
        return digest.compute(runs, {w: size.results.values() for w, size in sizes.items()})

    def _migrate(self, exp: _Experiment, runs: Sequence[RunConfig], uid: str, legacy: object) -> set[int]:
        """Copy an old status's results into storage once; the widths that got some."""
        if not isinstance(legacy, list) or not legacy or exp.migrated == uid:
            return set()
        by_width: dict[int, list[dict]] = {}
        for item in legacy:
            try:
                r = Result.model_validate(item)
            except ValueError:
                continue
            by_width.setdefault(r.width, []).append(r.to_wire())
        done = set()
        for run in runs:
            entries = sorted(by_width.get(run.width) or [], key=lambda d: d["id"])
            if not entries:
                continue
            uri = storage.join(run.paths.results, LEGACY_OBJECT.format(uid=uid or "unknown"))
            try:
                storage.write_text(uri, json.dumps(entries, indent=1, sort_keys=True) + "\n", exclusive=True)
            except FileExistsError:
                pass
            except (UserError, OSError) as err:
                log.warning("could not copy status.results of c%d to %s: %s", run.width, uri, err)
                return done  # tried again at the next reconcile
            done.add(run.width)
        exp.migrated = uid
        return done
