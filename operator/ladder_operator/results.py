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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ladder_api import artifacts, digest, storage
from ladder_api.errors import UserError
from ladder_api.plan import RunConfig
from ladder_api.status import Result

log = logging.getLogger("ladder.operator")

Key = tuple[str, str]
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


class ResultsCache:
    """What the operator has read of each experiment's results (see the module docstring)."""

    def __init__(self) -> None:
        self._experiments: dict[Key, _Experiment] = {}

    def forget(self, key: Key) -> None:
        self._experiments.pop(key, None)

    def digest(
        self, key: Key, runs: Sequence[RunConfig], triggers: Mapping[int, object], *,
        uid: str = "", legacy: object = None,
    ) -> digest.Digest:
        """The digest of every run's results of record. Blocking (storage I/O): call it from a
        thread. Raises ResultsUnreadable when a size was never read and cannot be read now."""
        exp = self._experiments.setdefault(key, _Experiment())
        self._record_configs(exp, runs)
        migrated = self._migrate(exp, runs, uid, legacy)
        results: dict[int, Iterable[Result]] = {}
        for run in runs:
            size = exp.sizes.setdefault((run.width, run.paths.results),
                                        _Size(artifacts.ResultsReader(run.paths.results)))
            trigger = triggers.get(run.width)
            if size.results is None or size.trigger != trigger or run.width in migrated:
                try:
                    size.results = size.reader.poll()
                    size.trigger = trigger
                except (UserError, OSError) as err:
                    if size.results is None:
                        raise ResultsUnreadable(f"cannot read {run.paths.results}: {err}") from None
                    log.warning("reading %s failed (%s); using what was read before", run.paths.results, err)
            results[run.width] = size.results.values()
        wanted = {(run.width, run.paths.results) for run in runs}
        exp.sizes = {k: v for k, v in exp.sizes.items() if k in wanted}  # widths gone, prefixes moved
        return digest.compute(runs, results)

    def _record_configs(self, exp: _Experiment, runs: Sequence[RunConfig]) -> None:
        spec_hash = runs[0].spec_hash if runs else None
        if not runs or exp.configs_written == spec_hash:
            return
        try:
            for run in runs:
                artifacts.write_run_config(run)
            exp.configs_written = spec_hash
        except (UserError, OSError) as err:
            log.warning("could not record the run configs under %s: %s", runs[0].paths.root, err)

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
