"""The documented limits of a spec, chosen so that every valid spec's objects fit Kubernetes.

What a spec becomes, and what bounds it:
- The ConfigMap of run configs holds one RunConfig per width, and a ConfigMap's data may not
  exceed 1 MiB (CONFIG_MAP_LIMIT). A run config repeats every URI of the spec and every list of
  the grid, so widths, the grid's lists and the strings that reach a run config are capped below
  (MAX_WIDTHS x the largest possible run config is under the limit: tests/api/test_limits.py
  builds that spec and renders it). 520 widths rendered 1.1 MB before these caps.
- The status holds a bounded digest (ladder_api.digest): a few numbers per width (so
  MAX_WIDTHS bounds it) and a summary of at most MAX_VIEWS frontier views, each frontier and
  Pareto front at most MAX_POINTS points (whose ties list at most MAX_WIDTHS widths and the best
  MAX_TIE_SETTINGS of the settings tied with the point, with their count), and one prediction
  line per width.
- The results of record are in storage, not in etcd, but the operator keeps what it has read in
  memory and reads it all again when it restarts: MAX_MEASUREMENTS bounds one experiment's
  results (about three times the paper's grid with every kept checkpoint, 34,380), and
  MAX_REPLICATES their bootstrap replicates (of which the operator keeps only the ranking FID's).

The caps are in the spec models (pydantic max_length), so the CRD carries them as maxItems /
maxLength and the API server refuses a spec past them at `kubectl apply`; `ladder validate` also
renders the run ConfigMap and measures it, and states the grid's size.
"""

from __future__ import annotations

CONFIG_MAP_LIMIT = 1024 * 1024  # bytes of data (keys and values) a ConfigMap may hold

MAX_WIDTHS = 48  # sizes in one ladder (the paper: 11)
MAX_LEVELS = 8  # entries of channelMult and attentionLevels (SD v1.5: 4 levels)
MAX_SLICE_RULES = 16  # resources.slices rules, and resources.overrides entries: MAX_WIDTHS
MAX_SAMPLERS = 3  # one entry per sampler Ladder has
MAX_GRID_LIST = 32  # evaluation.steps and evaluation.guidanceScales (the paper: 6 and 8)
MAX_METRICS = 3  # one entry per metric Ladder has
MAX_CHECKPOINT_STEPS = 64  # evaluation.checkpoints given as a list of steps
MAX_SOURCES = 8  # data.prepare.webdataset entries (files, prefixes or brace patterns)
MAX_URI = 512  # characters of any URI or path in a spec (they reach every run config, five times)
MAX_TEXT = 253  # characters of free-form names (textEncoder, referenceSet.name)
MAX_MEASUREMENTS = 100_000  # measurements of one experiment: widths x checkpoints x grid x metrics
MAX_REPLICATES = 4_000_000  # measurements x bootstrap.resamples (paper, all checkpoints: 3.4M)
MAX_POINTS = 64  # frontier and Pareto points in the status summary (about 150 bytes each)
MAX_TIE_SETTINGS = 3  # tied settings listed per frontier point in the status (about 70 bytes each)
MAX_VIEWS = MAX_SAMPLERS + 1  # frontier views: each sampler and the pooled one


def at_most(n: int, what: str = "entries") -> str:
    """The phrase field descriptions end with, so `kubectl explain` states the limit."""
    return f" At most {n} {what} (ladder_api.limits)."
