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
- What is kept in memory: every result, but bootstrap replicates only of the FID the summary
  ranks by (the only ones its paired comparisons use). The digest is computed again only after a
  read, a spec change or a size finishing: its comparisons over the resamples are the costly part.

Upgrade: operators before the digest kept results in `status.results`. While an old status still
shows them (until the API server prunes them: the new CRD does not declare them), they are copied
once into each size's results folder as one write-once object whose name sorts
before every evaluator's, so anything measured since wins over them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ladder_api import artifacts, digest, grid, storage
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
    reads: int = 0  # successful reads: the digest is computed again only after one


@dataclass
class _Experiment:
    sizes: dict[tuple, _Size] = field(default_factory=dict)  # (width, prefix, ranking FID) -> size
    configs_written: str | None = None  # spec hash whose run configs are in storage
    migrated: str | None = None  # uid whose status.results were copied to storage
    computed: tuple[tuple, digest.Digest] | None = None  # the last digest and what it was made of


def _keep_for(ranking: str | None) -> Callable[[Result], Result]:
    """What the operator keeps of a result: everything but the bootstrap replicates and seed
    values of metrics the summary does not rank by, which it never uses (the replicates are most
    of a result's bytes: 100 per result by default, up to ladder_api.limits.MAX_REPLICATES)."""

    def keep(r: Result) -> Result:
        if r.metric == ranking or (r.replicates is None and r.seed_values is None):
            return r
        return r.model_copy(update={"replicates": None, "seed_values": None})

    return keep


def _read(run: RunConfig, size: _Size, trigger: object) -> None:
    """Read the size's new result objects; on failure keep what was read before, if anything."""
    try:
        size.results = size.reader.poll()
        size.trigger = trigger
        size.reads += 1
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
        done: Collection[int] = (), uid: str = "", legacy: object = None,
    ) -> digest.Digest:
        """The digest of every run's results of record, the sizes in `done` finished (the others'
        frontier is predicted). Blocking (storage I/O, and the summary's bootstrap comparisons):
        call it from a thread. Raises ResultsUnreadable when a size was never read and cannot be
        read now."""
        exp = self._experiments.setdefault(key, _Experiment())
        migrated = self._migrate(exp, runs, uid, legacy)
        ranking = grid.ranking_fid(runs[0].evaluation) if runs else None
        sizes = {run.width: exp.sizes.setdefault(
            (run.width, run.paths.results, ranking),
            _Size(artifacts.ResultsReader(run.paths.results, keep=_keep_for(ranking)))) for run in runs}
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
        wanted = {(run.width, run.paths.results, ranking) for run in runs}
        exp.sizes = {k: v for k, v in exp.sizes.items() if k in wanted}  # widths gone, prefixes moved
        # The summary compares every pair of sizes over the bootstrap resamples (seconds at the
        # paper's scale): made again only when a read, the spec or the finished sizes changed.
        made_of = (spec_hash, frozenset(done), tuple((w, id(s), s.reads) for w, s in sorted(sizes.items())))
        if exp.computed is None or exp.computed[0] != made_of:
            results = {w: size.results.values() for w, size in sizes.items()}
            exp.computed = (made_of, digest.compute(runs, results, done))
        return exp.computed[1]

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
