"""The verbs Ladder uses, on the `kubernetes` package's transport, returning plain JSON dicts.

Every failure is an ApiError (errors.py): an HTTP error with the Status reason and message the
server sent, or status 0 when no answer came (refused, reset, timed out). `on_error` is a hook
called with each ApiError before it is raised (the operator counts them in its metrics); the
client itself keeps no metrics and does not retry: retrying is the caller's policy
(ladder_kube.retry), because a reconcile loop, a training step and an evaluator each want a
different one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ladder_kube.credentials import Credentials
from ladder_kube.errors import TLS_FAILED, UNREACHABLE, ApiError
from ladder_kube.resources import Resource, object_path, of

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # the body is JSON, which is YAML

TIMEOUT_S = (10.0, 60.0)  # connect, read: a LIST of every experiment must fit in the read


class Client:
    def __init__(
        self,
        creds: Credentials,
        *,
        user_agent: str,
        on_error: Callable[[ApiError], None] | None = None,
        pool_size: int | None = None,
        timeout_s: tuple[float, float] = TIMEOUT_S,
    ):
        from kubernetes import client as k8s

        if pool_size is not None:  # one connection per concurrent caller (the operator's threads)
            creds.configuration.connection_pool_maxsize = pool_size
        self.creds = creds
        self._api = k8s.ApiClient(creds.configuration)
        self._api.user_agent = user_agent
        self._on_error = on_error
        self._timeout = timeout_s

    @property
    def default_namespace(self) -> str:
        return self.creds.default_namespace

    def close(self) -> None:
        self._api.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        verb: str,
        content_type: str = JSON,
        query: dict[str, str] | None = None,
    ) -> dict:
        try:
            rsp = self._send(method, path, body, content_type, query)
        except ApiError as err:
            raise self._failed(err, verb) from None
        if rsp.status >= 400:
            raise self._failed(_http_error(rsp.status, rsp.data, verb), verb)
        return json.loads(rsp.data) if rsp.data else {}

    def _send(self, method, path, body, content_type, query):
        import urllib3
        from kubernetes.client.exceptions import ApiException

        _, url, headers, _, _ = self._api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": JSON},
            auth_settings=["BearerToken"],
        )
        try:
            rsp = self._api.rest_client.request(
                method, url, headers=headers, body=body, _request_timeout=self._timeout
            )
            rsp.read()
            return rsp
        except ApiException as err:  # the library's wrapping of a failed TLS handshake
            raise ApiError(0, TLS_FAILED, f"{err.reason} (server {self.creds.server})") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ApiError(0, UNREACHABLE, f"no answer from {self.creds.server}: {err}") from None

    def _failed(self, err: ApiError, verb: str) -> ApiError:
        err.verb = verb
        if self._on_error is not None:
            self._on_error(err)
        return err

    # --- verbs ---------------------------------------------------------------------------------

    def get(self, path: str) -> dict:
        return self.request("GET", path, verb="get")

    def list(self, path: str, label_selector: str | None = None) -> dict:
        query = {"labelSelector": label_selector} if label_selector else None
        return self.request("GET", path, query=query, verb="list")

    def create(self, obj: dict) -> dict | None:
        """POST; None when the object already exists (409 AlreadyExists), which callers treat
        as done: creates are idempotent by name."""
        path = of(obj).path(obj["metadata"].get("namespace"))
        try:
            return self.request("POST", path, obj, verb="create")
        except ApiError as err:
            if err.status == 409 and err.reason == "AlreadyExists":
                return None
            raise

    def apply(self, obj: dict, *, manager: str, subresource: str | None = None, force: bool = True) -> dict:
        """Server-side apply: `obj` is everything `manager` owns in the object (or subresource)."""
        query = {"fieldManager": manager, "force": "true" if force else "false"}
        return self.request(
            "PATCH", object_path(obj, subresource), obj, content_type=APPLY_PATCH, query=query, verb="apply"
        )

    def merge_patch(self, path: str, patch: dict, *, manager: str) -> dict:
        return self.request(
            "PATCH", path, patch, content_type=MERGE_PATCH, query={"fieldManager": manager}, verb="patch"
        )

    def json_patch(self, path: str, ops: list[dict], *, manager: str) -> dict:
        return self.request(
            "PATCH", path, ops, content_type=JSON_PATCH, query={"fieldManager": manager}, verb="patch"
        )

    def delete(self, path: str) -> dict | None:
        """Background propagation; None when already gone (404)."""
        try:
            return self.request("DELETE", path, {"propagationPolicy": "Background"}, verb="delete")
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def preferred_version(self, group: str) -> str | None:
        """The group's preferred version, or None when the API server does not serve the group."""
        try:
            info = self.get(f"/apis/{group}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return (info.get("preferredVersion") or {}).get("version")

    def served(self, resource: Resource) -> Resource | None:
        """`resource` at its group's preferred version, or None when the group is not served."""
        version = self.preferred_version(resource.group)
        return resource.at(version) if version else None


def _http_error(status: int, data: bytes | None, verb: str) -> ApiError:
    text = (data or b"").decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"message": text[:1000]}
    message = str(payload.get("message") or text[:1000])
    causes = (
        (payload.get("details") or {}).get("causes") if isinstance(payload.get("details"), dict) else None
    )
    causes = tuple(c for c in causes or () if isinstance(c, dict))
    return ApiError(status, str(payload.get("reason") or ""), message, verb, causes)
