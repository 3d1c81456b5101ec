"""A tiny synchronous HTTP client for tests that must see raw status codes and bodies (the
kubernetes client hides some of them); operator and evaluator code use real clients."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class Http:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.headers: dict[str, list[str]] = {}  # of the last response (e.g. its Warning headers)

    def request(
        self, method: str, path: str, body=None, content_type: str = "application/json", accept: str = ""
    ):
        status, raw = self.raw(method, path, body, content_type, accept)
        return status, json.loads(raw or b"null")

    def raw(
        self, method: str, path: str, body=None, content_type: str = "application/json", accept: str = ""
    ):
        """(status, body bytes) of one request, for answers that are not JSON (OpenAPI protobuf)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as rsp:
                self._keep_headers(rsp.headers)
                return rsp.status, rsp.read()
        except urllib.error.HTTPError as err:
            self._keep_headers(err.headers)
            return err.code, err.read()

    def _keep_headers(self, headers) -> None:
        self.headers = {}
        for k, v in headers.items():
            self.headers.setdefault(k.lower(), []).append(v)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def delete(self, path, body=None):
        return self.request("DELETE", path, body)

    def merge(self, path, body):
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def jsonpatch(self, path, ops):
        return self.request("PATCH", path, ops, "application/json-patch+json")

    def apply(self, path, body, manager: str, force: bool = False):
        q = ("&" if "?" in path else "?") + f"fieldManager={manager}" + ("&force=true" if force else "")
        return self.request("PATCH", path + q, body, "application/apply-patch+yaml")

    def watch_lines(self, path: str, timeout_s: float = 5.0, max_events: int | None = None) -> list[dict]:
        """Read watch events until the server closes the stream (timeoutSeconds) or max_events."""
        req = urllib.request.Request(self.url + path)
        out = []
        with urllib.request.urlopen(req, timeout=timeout_s + 10) as rsp:
            for line in rsp:
                if line.strip():
                    out.append(json.loads(line))
                    if max_events and len(out) >= max_events:
                        break
        return out
