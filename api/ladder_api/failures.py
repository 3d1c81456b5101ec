"""Which exit code a failed pod gets. The podFailurePolicy restarts a JobSet only for RESTARTABLE
(and signals), so this decides between "retry" and "fail the experiment":

- USER_ERROR (2): the spec, the data or the permissions are wrong (UserError, SpecError, HTTP
  401/403, gRPC PERMISSION_DENIED / UNAUTHENTICATED, no Google credentials). A restart would fail
  the same way; the message says what to fix.
- RESTARTABLE (42): the infrastructure failed, and a restart (within scheduling.maxRestarts)
  resumes from the last checkpoint: HTTP 408/429/5xx from GCS, a retry deadline spent on them, a
  connection reset, refused or timed out, a DNS lookup failing, gRPC UNAVAILABLE /
  DEADLINE_EXCEEDED / ABORTED / RESOURCE_EXHAUSTED, a JAX runtime error with one of the first
  three statuses (a peer host died, a collective or barrier timed out), jax.distributed not
  reaching its coordinator (TransientError), a google-auth error it marks retryable.
- 1: anything else is a bug; a restart would repeat it, so it fails the JobSet with its traceback.

The exception and its causes (__cause__, __context__, ExceptionGroup members) are examined,
outermost first, so a library's wrapper around a transient error is still transient. Types are
recognised by module and name along the class hierarchy, not by import: ladder_api imports no
JAX, gRPC or Google client, and a pod classifies whatever its libraries raise.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
from typing import NamedTuple

from ladder_api import exitcodes
from ladder_api.errors import SpecError, TransientError, UserError, print_user_error

BUG = 1
TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
PERMISSION_HTTP = frozenset({401, 403})
TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED"})
PERMISSION_GRPC = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})
# absl status text as XLA, the JAX coordination service and tensorstore (orbax's GCS I/O) print it.
# Not RESOURCE_EXHAUSTED: from XLA that is out-of-memory, which a restart repeats.
TRANSIENT_STATUS = re.compile(r"\b(UNAVAILABLE|DEADLINE_EXCEEDED|ABORTED)\b:")
TRANSIENT_ERRNO = frozenset({
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
    errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.EPIPE,
})
# Network failures of the HTTP stacks GCS clients use, by "module.Class" (any base class counts).
TRANSIENT_TYPES = frozenset({
    "requests.exceptions.ConnectionError", "requests.exceptions.Timeout",
    "requests.exceptions.ChunkedEncodingError", "urllib3.exceptions.ProtocolError",
    "urllib3.exceptions.NewConnectionError", "urllib3.exceptions.TimeoutError",
    "aiohttp.client_exceptions.ClientConnectionError", "aiohttp.client_exceptions.ClientPayloadError",
    "google.api_core.exceptions.RetryError", "google.auth.exceptions.TransportError",
})
CREDENTIALS_TYPES = frozenset({"google.auth.exceptions.DefaultCredentialsError"})


class Failure(NamedTuple):
    exit_code: int
    kind: str  # "user error" | "infrastructure fault" | "bug"
    cause: BaseException  # the exception in the chain that decided it


def _types(exc: BaseException) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}


def _http_status(exc: BaseException, types: set[str]) -> int | None:
    if "requests.exceptions.HTTPError" in types:
        code = getattr(getattr(exc, "response", None), "status_code", None)
    elif any(t.startswith(("google.api_core.exceptions.", "gcsfs.")) for t in types):
        code = getattr(exc, "code", None)  # GoogleAPICallError, gcsfs HttpError: the HTTP status
    else:
        return None
    return code if isinstance(code, int) else None


def _grpc_status(exc: BaseException, types: set[str]) -> str | None:
    if "grpc.RpcError" not in types or not callable(getattr(exc, "code", None)):
        return None
    try:
        return exc.code().name
    except Exception:  # noqa: BLE001 - an RpcError without a status says nothing
        return None


def _one(exc: BaseException) -> str | None:
    """'user', 'transient' or None (undecided) for one exception, ignoring its causes."""
    if isinstance(exc, TransientError):  # before UserError: UnreachableError is both
        return "transient"
    if isinstance(exc, (UserError, SpecError)):
        return "user"
    types = _types(exc)
    if types & CREDENTIALS_TYPES:
        return "user"
    if any(t.startswith("google.auth.exceptions.") for t in types) and getattr(exc, "retryable", False):
        return "transient"
    status = _http_status(exc, types)
    if status is not None:
        return "transient" if status in TRANSIENT_HTTP else "user" if status in PERMISSION_HTTP else None
    code = _grpc_status(exc, types)
    if code is not None:
        return "transient" if code in TRANSIENT_GRPC else "user" if code in PERMISSION_GRPC else None
    if types & TRANSIENT_TYPES or isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return "transient"
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNO:
        return "transient"
    if TRANSIENT_STATUS.search(str(exc)):
        return "transient"
    return None


def _chain(exc: BaseException):
    """exc, then its causes and group members, breadth first, each once."""
    seen, queue = set(), [exc]
    while queue:
        e = queue.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        queue.extend(getattr(e, "exceptions", ()) if isinstance(e, BaseExceptionGroup) else ())
        if e.__cause__ is not None:
            queue.append(e.__cause__)
        elif e.__context__ is not None and not e.__suppress_context__:
            queue.append(e.__context__)


def classify(exc: BaseException) -> Failure:
    for e in _chain(exc):
        verdict = _one(e)
        if verdict == "user":
            return Failure(exitcodes.USER_ERROR, "user error", e)
        if verdict == "transient":
            return Failure(exitcodes.RESTARTABLE, "infrastructure fault", e)
    return Failure(BUG, "bug", exc)


def _user_message(cause: BaseException) -> UserError | SpecError:
    if isinstance(cause, (UserError, SpecError)):
        return cause
    what = f"{type(cause).__name__}: {cause}"
    if _types(cause) & CREDENTIALS_TYPES:
        return UserError(f"no Google credentials ({what}); run the pods under a Kubernetes service "
                         "account bound to a Google one (resources.serviceAccount, Workload Identity)")
    return UserError(f"access denied ({what}); give the pods' service account "
                     "(resources.serviceAccount, Workload Identity) access to the bucket or object")


def report(exc: BaseException, log: logging.Logger) -> int:
    """What an entry point does with an exception that ended it: show it as its kind needs (a
    user error as one message, no traceback), and return the exit code."""
    failure = classify(exc)
    if failure.kind == "user error":
        print_user_error(_user_message(failure.cause))
    elif failure.kind == "infrastructure fault":
        log.error("infrastructure fault (%s: %s); exiting %d so the JobSet restarts and resumes from "
                  "the last checkpoint", type(failure.cause).__name__, failure.cause, failure.exit_code,
                  exc_info=exc)
    else:
        log.error("unexpected error; exiting %d (not restarted)", failure.exit_code, exc_info=exc)
    return failure.exit_code
