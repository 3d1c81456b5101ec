"""The status digest: what the status says about the results of record, bounded in size.

The results of record are in the experiment's storage (ladder_api.artifacts: each evaluator
write is a new object under its size's results/ folder). The status carries only this digest:
per size, measurements recorded / expected / failed and the size's best FID; and the summary
(best FID, the frontier, the Pareto front) computed from ALL results of record. Pure: the same
results give the same digest, whichever backend computes it. Which results count towards a size's
grid, how many it expects and which FID ranks are ladder_api.grid's (counted, expected_count,
ranking_fid): the definitions the evaluator, `ladder run` and the operator share.

Who computes it in a cluster: the operator, and only the operator.
- The summary is a function of every size's results (the frontier compares sizes). An evaluator
  knows its own size; making each one read every other size's results would multiply the reads
  by the number of evaluators, and concurrent evaluators would apply summaries computed from
  different snapshots, the last one winning with a stale view. One writer has no such race.
- The operator already watches every experiment and has storage access (checkpoint cleanup), and
  reading is cheap for it: result objects are write-once, so it keeps what it has read by object
  name and fetches only the new ones (artifacts.ResultsReader). It reads a size's results only
  when that size's evaluator reports progress in its size entry (`evaluator`, a few bytes) or the
  size's evaluation JobSet changes; an idle operator makes no API or storage requests.
- `ladder run` computes the same digest with this module from the same files, so a local run's
  status.json and a cluster's status read alike.

The bound: a size entry's digest is four numbers; the summary holds at most
2 x frontier.MAX_POINTS points; the sizes list is bounded by the CRD's maxItems on widths. A test
writes the paper's grid with `checkpoints: all` through the real writers and checks the whole
object, managedFields included, stays under 256 KiB.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ladder_api import grid
from ladder_api.frontier import MAX_POINTS, fid_results, summarize_for
from ladder_api.plan import RunConfig
from ladder_api.predict import unfinished_sizes
from ladder_api.status import Measurements, Result, SizePhase, SizeStatus, Summary


@dataclass(frozen=True)
class Digest:
    """What the status holds about the results: per width, and the summary's results part."""

    sizes: Mapping[int, Measurements]
    summary: Summary  # best, fidMetric, measured, views, predictions (progress is the phases')


def size_measurements(run: RunConfig, results: Iterable[Result], metric: str | None) -> Measurements:
    """Counts over the current grid (ladder_api.grid); the best FID over every result of record
    of the size."""
    results = list(results)
    counted = grid.counted(run, results)
    best = None
    if metric is not None and (fids := fid_results(results, metric)):
        best = min(r.value for r in fids)
    return Measurements(
        recorded=len({r.id for r in counted}),
        expected=grid.expected_count(run),
        failed=len({r.id for r in counted if r.failed}),
        best_fid=best,
    )


def finished(sizes: Iterable[SizeStatus]) -> set[int]:
    """The widths trained and evaluated: the summary predicts the others' frontier."""
    return {s.width for s in sizes if s.phase is SizePhase.succeeded}


def compute(
    runs: Sequence[RunConfig], results: Mapping[int, Iterable[Result]], done: Collection[int] = (),
    max_points: int | None = MAX_POINTS,
) -> Digest:
    """The digest of every size's results of record (by width; a width absent has none). The
    counts are of the current grid; the summary is ladder_api.frontier.summarize_for over every
    result of record of the sizes (a measurement of a grid point since dropped is still true),
    with the spec's frontier views, and the predicted frontier of the sizes not in `done`."""
    by_width = {run.width: [r for r in results.get(run.width) or () if r.width == run.width] for run in runs}
    metric = grid.ranking_fid(runs[0].evaluation) if runs else None
    sizes = {run.width: size_measurements(run, by_width[run.width], metric) for run in runs}
    if not runs:
        return Digest(sizes, Summary(measured="0/0"))
    everything = [r for run in runs for r in by_width[run.width]]
    summary = summarize_for(everything, 0, 0, runs[0].evaluation, metric, max_points=max_points,
                            unfinished=unfinished_sizes(runs, set(done)))
    recorded = sum(m.recorded for m in sizes.values())
    expected = sum(m.expected or 0 for m in sizes.values())
    summary.measured = f"{recorded}/{expected}"
    return Digest(sizes, summary)


def progress(sizes: Sequence[SizeStatus]) -> dict:
    """The summary's progress fields, from the sizes' phases."""
    done = len(finished(sizes))
    return {"sizes_done": done, "sizes_total": len(sizes), "progress": f"{done}/{len(sizes)}"}


def summary_of(digest: Summary | None, sizes: Sequence[SizeStatus]) -> Summary:
    """The whole summary: the digest's results part (if any) with progress from the phases."""
    base = digest if digest is not None else Summary()
    return base.model_copy(update=progress(sizes))
