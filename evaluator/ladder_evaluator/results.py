"""Where Result entries go: a JSON file outside a cluster, the experiment's /status inside one.

Both stores have the same shape (a list of Result wire dicts, keyed by `id`) and the same
semantics: `existing()` tells the evaluator which measurements to skip, `write(results)` adds or
replaces entries by id and never duplicates one. The cluster store is in `status_store`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from ladder_api.errors import UserError
from ladder_api.status import Result


class ResultStore(Protocol):
    def existing(self) -> dict[str, Result]: ...

    def write(self, results: Iterable[Result]) -> None: ...


def merge(old: Iterable[Result], new: Iterable[Result]) -> list[Result]:
    """Entries of `old` and `new` by id, `new` winning, sorted by id (stable files, small diffs)."""
    by_id = {r.id: r for r in old}
    by_id.update({r.id: r for r in new})
    return [by_id[k] for k in sorted(by_id)]


class FileStore:
    """run.paths.results: a JSON list of Result wire dicts, replaced atomically on every write.

    The new content goes to a temporary file in the same directory, is flushed and fsynced, and
    os.replace()s the old one, so a reader (or a crash) sees either the old list or the new one,
    never half a file. One evaluator process owns one run's file, so read-merge-replace is safe.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(str(path).removeprefix("file://"))
        if str(path).startswith("gs://"):
            raise UserError(
                f"results file {path} is on GCS: outside a cluster pass --results-file with a local "
                "path, or run in the cluster where results go to the experiment's status"
            )

    def existing(self) -> dict[str, Result]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as err:
            raise UserError(
                f"results file {self.path} is not valid JSON ({err}); move it away to start over"
            ) from None
        if not isinstance(data, list):
            raise UserError(f"results file {self.path} must hold a JSON list of results")
        return {r.id: r for r in (Result.model_validate(d) for d in data)}

    def write(self, results: Iterable[Result]) -> None:
        merged = merge(self.existing().values(), results)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump([r.to_wire() for r in merged], fh, indent=1, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
