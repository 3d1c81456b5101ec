"""Turn pydantic errors into one line per problem that names the field path (camelCase, as the
user wrote it) and what is allowed. The CLI, the operator's Invalid status and the pods all use
this, so a bad spec reads the same everywhere."""

from __future__ import annotations

from pydantic import ValidationError


class SpecError(Exception):  # noqa: N818 (reads better at call sites than SpecValidationError)
    """A user error: the CLI prints `problems` and exits 2, with no traceback."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(
            ("function-", "literal[", "list[", "union[", "lax-or-strict")
        ):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def describe(err: ValidationError) -> list[str]:
    """One line per field path. A union (e.g. evaluation.checkpoints: "final" | "all" | [steps])
    fails once per member; those alternatives are joined on one line with "; or "."""
    by_path: dict[str, list[str]] = {}
    for e in err.errors(include_url=False):
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; fields are camelCase)"
        msgs = by_path.setdefault(_path(e["loc"]), [])
        if msg not in msgs:
            msgs.append(msg)
    return [f"{path}: {'; or '.join(msgs)}" for path, msgs in by_path.items()]


class UserError(Exception):
    """Any other user-facing error (missing checkpoint, unreachable bucket, bad weights path).

    Entry points print the message, exit non-zero and show no traceback. The message must name
    the field or path at fault and say what to do.
    """


class TransientError(Exception):
    """An infrastructure fault that a restart can get past (a coordinator that never answered, a
    peer host gone). Entry points exit exitcodes.RESTARTABLE, so the JobSet restarts and resumes
    from the last checkpoint (ladder_api.failures classifies the library errors of this kind)."""


class UnreachableError(TransientError, UserError):
    """Storage or an API that did not answer (5xx, 429, timeouts, refused connections): in a pod an
    infrastructure fault (exit RESTARTABLE, the JobSet restarts), at a command line a user error
    printed as one line naming the location (a wrong endpoint or a network down)."""


def print_user_error(err: SpecError | UserError) -> None:
    """The one way every entry point (the CLI, the trainer, the evaluator) shows a user error:
    one line per problem on stderr, no traceback. Callers then exit with exitcodes.USER_ERROR."""
    import sys

    if isinstance(err, SpecError):
        for problem in err.problems:
            print(f"{err.source}: {problem}", file=sys.stderr)
    else:
        print(f"error: {err}", file=sys.stderr)
