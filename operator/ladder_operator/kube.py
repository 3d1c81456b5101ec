"""A small async Kubernetes REST client for the operator's writes (kopf does the watching).

Why not the official client: it is synchronous, and the operator runs inside kopf's event loop;
threads per request would cost more memory and latency than a few aiohttp calls. The official
package is still used to *read* credentials (kubeconfig or in-cluster), exactly as kubectl
resolves them, and the same credentials are handed to kopf.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass

import aiohttp

from ladder_api.errors import UserError
from ladder_api.plan import CODE_VERSION
from ladder_operator import metrics


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


@dataclass
class Credentials:
    server: str
    token: str | None = None
    token_path: str | None = None  # in a pod: the projected token, which the kubelet rotates
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False
    default_namespace: str = "default"


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """In-cluster service account when running in a pod, else the kubeconfig (KUBECONFIG or
    ~/.kube/config), as kubectl does."""

    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    cfg = k8s_client.Configuration()
    namespace = "default"
    token_path = None
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=cfg)
        token_path = SERVICE_ACCOUNT_TOKEN
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh:
                namespace = fh.read().strip() or namespace
        except OSError:
            pass
    else:
        try:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        except (k8s_config.ConfigException, OSError) as err:
            where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise UserError(
                f"no usable Kubernetes credentials in {where} ({err}); point --kubeconfig or KUBECONFIG at "
                "a kubeconfig, or run the operator in a pod with a service account"
            ) from None
        try:
            _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
            namespace = (active or {}).get("context", {}).get("namespace") or namespace
        except Exception:  # noqa: BLE001 (a missing namespace in the context is not an error)
            pass
    token = None
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if auth:
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
    return Credentials(
        server=cfg.host.rstrip("/"),
        token=token,
        token_path=token_path,
        ca_path=cfg.ssl_ca_cert,
        cert_path=cfg.cert_file,
        key_path=cfg.key_file,
        insecure=not cfg.verify_ssl,
        default_namespace=namespace,
    )


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def resource_path(
    api_version: str, plural: str, namespace: str | None, name: str | None = None, sub: str | None = None
) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    if name:
        base += f"/{name}"
    if sub:
        base += f"/{sub}"
    return base


PLURALS = {
    "ConfigMap": "configmaps",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "JobSet": "jobsets",
    "Event": "events",
    "Workload": "workloads",
    "ScalingExperiment": "scalingexperiments",
}


class Kube:
    def __init__(self, creds: Credentials):
        self.creds = creds
        self._session: aiohttp.ClientSession | None = None
        self._token_mtime: float | None = None

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ctx: ssl.SSLContext | bool | None = None
            if self.creds.server.startswith("https"):
                ctx = (
                    ssl.create_default_context(cafile=self.creds.ca_path)
                    if self.creds.ca_path
                    else (ssl.create_default_context())
                )
                if self.creds.cert_path:
                    ctx.load_cert_chain(self.creds.cert_path, self.creds.key_path)
                if self.creds.insecure:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
            headers = {"User-Agent": "ladder-operator/" + CODE_VERSION}
            self._session = aiohttp.ClientSession(
                base_url=None,
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=ctx, limit=32),
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _token(self) -> str | None:
        """The bearer token; re-read when the kubelet has rotated the projected token file."""
        path = self.creds.token_path
        if path:
            try:
                mtime = os.stat(path).st_mtime
                if mtime != self._token_mtime:
                    with open(path) as fh:
                        self.creds.token = fh.read().strip()
                    self._token_mtime = mtime
            except OSError:
                pass
        return self.creds.token

    async def request(
        self,
        method: str,
        path: str,
        body=None,
        *,
        content_type: str = "application/json",
        params: dict | None = None,
        verb: str = "",
    ) -> dict:
        session = await self.session()
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": content_type}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with session.request(
            method, self.creds.server + path, data=data, params=params, headers=headers
        ) as rsp:
            text = await rsp.text()
            if rsp.status >= 400:
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = {"message": text}
                if rsp.status not in (404, 409):
                    metrics.API_ERRORS.labels(verb=verb or method.lower(), code=str(rsp.status)).inc()
                raise ApiError(rsp.status, payload.get("reason", ""), payload.get("message", text))
            return json.loads(text) if text else {}

    # --- verbs ---------------------------------------------------------------------------------

    async def get(self, path: str) -> dict:
        return await self.request("GET", path, verb="get")

    async def list(self, path: str, label_selector: str | None = None) -> dict:
        params = {"labelSelector": label_selector} if label_selector else None
        return await self.request("GET", path, params=params, verb="list")

    async def create(self, obj: dict) -> dict | None:
        """POST; None when it already exists (409), which callers treat as done."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], PLURALS[obj["kind"]], meta.get("namespace"))
        try:
            return await self.request("POST", path, obj, verb="create")
        except ApiError as err:
            if err.status == 409 and err.reason == "AlreadyExists":
                return None
            raise

    async def apply(self, obj: dict, *, manager: str, sub: str | None = None, force: bool = True) -> dict:
        meta = obj["metadata"]
        path = resource_path(
            obj["apiVersion"], PLURALS[obj["kind"]], meta.get("namespace"), meta["name"], sub
        )
        params = {"fieldManager": manager, "force": "true" if force else "false"}
        return await self.request(
            "PATCH", path, obj, content_type="application/apply-patch+yaml", params=params, verb="apply"
        )

    async def merge_patch(self, path: str, patch: dict) -> dict:
        return await self.request(
            "PATCH",
            path,
            patch,
            content_type="application/merge-patch+json",
            params={"fieldManager": "ladder-operator"},
            verb="patch",
        )

    async def json_patch(self, path: str, ops: list[dict]) -> dict:
        return await self.request(
            "PATCH",
            path,
            ops,
            content_type="application/json-patch+json",
            params={"fieldManager": "ladder-operator"},
            verb="patch",
        )

    async def delete(self, path: str) -> dict | None:
        try:
            return await self.request("DELETE", path, {"propagationPolicy": "Background"}, verb="delete")
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def preferred_version(self, group: str) -> str | None:
        """The group's preferred version, or None when the API server does not serve it."""
        try:
            info = await self.get(f"/apis/{group}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return (info.get("preferredVersion") or {}).get("version")
