"""Failure classification (ladder_api.failures) on the exceptions the pods' libraries really raise:
user errors exit 2 (never restarted), infrastructure faults 42 (restarted), bugs 1.

The gRPC errors come from real calls (a closed port; a local server aborting with the status);
the JAX out-of-memory error from a real allocation; the others are the libraries' own types."""

from __future__ import annotations

import errno
import socket
from concurrent import futures

import pytest

from ladder_api import exitcodes
from ladder_api.errors import SpecError, TransientError, UserError
from ladder_api.failures import BUG, classify


def _code(exc: BaseException) -> int:
    return classify(exc).exit_code


def test_user_errors_exit_2():
    import google.auth.exceptions as auth
    from google.api_core import exceptions as gapi

    for exc in (UserError("bad"), SpecError("spec.yaml", ["training.steps: must be > 0"]),
                gapi.Forbidden("no access to bucket"), gapi.Unauthorized("token"),
                auth.DefaultCredentialsError("no credentials")):
        assert _code(exc) == exitcodes.USER_ERROR, exc


def test_transient_storage_and_network_errors_exit_42():
    import gcsfs.retry
    import google.auth.exceptions as auth
    from google.api_core import exceptions as gapi

    for exc in (gapi.ServiceUnavailable("503"), gapi.TooManyRequests("429"), gapi.InternalServerError("500"),
                gapi.BadGateway("502"), gapi.GatewayTimeout("504"),
                gapi.RetryError("Deadline of 120s exceeded", cause=gapi.ServiceUnavailable("x")),
                gcsfs.retry.HttpError({"code": 503, "message": "backend"}),
                auth.TransportError("metadata server unreachable"),
                ConnectionResetError(errno.ECONNRESET, "reset by peer"), TimeoutError("read timed out"),
                socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
                OSError(errno.ENETUNREACH, "Network is unreachable"),
                TransientError("coordinator not reached")):
        assert _code(exc) == exitcodes.RESTARTABLE, exc


def test_a_real_connection_failure_of_requests_exits_42():
    import requests

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert _code(info.value) == exitcodes.RESTARTABLE


def _grpc_error(status_name: str | None):
    """A real grpc.RpcError: from a closed port (None) or a server aborting with status_name."""
    import grpc

    server = None
    if status_name is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            target = f"127.0.0.1:{s.getsockname()[1]}"
    else:
        def abort(request, context):
            context.abort(getattr(grpc.StatusCode, status_name), "aborted by the test server")

        handler = grpc.method_handlers_generic_handler(
            "test.Svc", {"Call": grpc.unary_unary_rpc_method_handler(abort)})
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        server.add_generic_rpc_handlers((handler,))
        target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        server.start()
    try:
        with grpc.insecure_channel(target) as channel:
            channel.unary_unary("/test.Svc/Call")(b"", timeout=5)
    except grpc.RpcError as err:
        return err
    finally:
        if server is not None:
            server.stop(None)
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize("status,want", [
    (None, exitcodes.RESTARTABLE),  # nothing listening: UNAVAILABLE
    ("UNAVAILABLE", exitcodes.RESTARTABLE),
    ("DEADLINE_EXCEEDED", exitcodes.RESTARTABLE),
    ("ABORTED", exitcodes.RESTARTABLE),
    ("PERMISSION_DENIED", exitcodes.USER_ERROR),
    ("UNAUTHENTICATED", exitcodes.USER_ERROR),
    ("INVALID_ARGUMENT", BUG),
])
def test_grpc_status(status, want):
    assert _code(_grpc_error(status)) == want


def test_jax_runtime_errors():
    import jax
    import jax.numpy as jnp

    # A peer host gone or a barrier timing out reach the survivors as these statuses.
    assert _code(jax.errors.JaxRuntimeError("UNAVAILABLE: Connection reset by peer")) == exitcodes.RESTARTABLE
    assert _code(jax.errors.JaxRuntimeError(
        "DEADLINE_EXCEEDED: Barrier timed out. Id: PreemptionSyncManager")) == exitcodes.RESTARTABLE
    with pytest.raises(jax.errors.JaxRuntimeError) as oom:  # out of memory: a restart repeats it
        jnp.zeros((2**42,), jnp.float32).block_until_ready()
    assert "RESOURCE_EXHAUSTED" in str(oom.value) and _code(oom.value) == BUG


def test_bugs_exit_1():
    from google.api_core import exceptions as gapi

    for exc in (ValueError("shapes do not match"), KeyError("params"), FileNotFoundError("/tmp/x"),
                gapi.NotFound("no such object"), gapi.BadRequest("malformed")):
        assert _code(exc) == BUG, exc


def test_causes_and_groups_are_followed():
    from google.api_core import exceptions as gapi

    try:
        try:
            raise gapi.ServiceUnavailable("GCS is down")
        except gapi.ServiceUnavailable as inner:
            raise RuntimeError("orbax: could not read step 400") from inner
    except RuntimeError as outer:
        failure = classify(outer)
    assert failure.exit_code == exitcodes.RESTARTABLE and isinstance(failure.cause, gapi.ServiceUnavailable)
    assert _code(ExceptionGroup("save", [ValueError("x"), ConnectionResetError()])) == exitcodes.RESTARTABLE
    # A user error wrapped by another exception is still the user's to fix.
    wrapped = RuntimeError("while reading the config")
    wrapped.__cause__ = UserError("run.json: no such file")
    assert _code(wrapped) == exitcodes.USER_ERROR
