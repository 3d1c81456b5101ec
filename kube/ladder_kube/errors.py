"""ApiError: one error type for every failed call, with what a caller needs to decide.

`status` is the HTTP status, or 0 when no answer came at all (connection refused or reset, a
timeout: the API server restarting looks like this). `transient` is the retry rule every writer
shares: no answer, 429 (priority and fairness), 500/502/503/504 (the server or the load balancer in
front of it), and 409 on a server-side apply (the server gave up its own retries on a concurrent
write; an apply carries no resourceVersion, so sending it again is the fix). Any other 409 is a
real conflict (AlreadyExists, a stale resourceVersion) and is not retried blindly.
"""

from __future__ import annotations

UNREACHABLE = "Unreachable"  # reason when no HTTP answer came
TLS_FAILED = "TLSFailed"  # reason when the TLS handshake failed: configuration, not weather
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, verb: str = "", causes: tuple = ()):
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status, self.reason, self.message, self.verb = status, reason, message, verb
        self.causes = causes  # the Status's details.causes: [{reason, message, field}, ...]

    @property
    def transient(self) -> bool:
        return not self.field_conflict and is_transient(self.status, self.reason, self.verb)

    @property
    def field_conflict(self) -> bool:
        """An apply without force met fields another field manager owns with other values."""
        return self.status == 409 and any(c.get("reason") == "FieldManagerConflict" for c in self.causes)


def is_transient(status: int, reason: str, verb: str) -> bool:
    """The retry rule (module docstring). A field-manager conflict is never transient (resending
    meets the same owner); a writer applying without force resolves it (ladder_kube.status)."""
    if status == 0:
        return reason == UNREACHABLE
    if status in TRANSIENT_STATUSES:
        return True
    return status == 409 and verb == "apply"
