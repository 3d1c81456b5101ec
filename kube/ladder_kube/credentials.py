"""Credentials resolved as kubectl resolves them, loaded by the `kubernetes` package.

Order (client-go's loading rules): `--kubeconfig`, else `KUBECONFIG` (a path list, merged), else
`~/.kube/config` when it exists, else the pod's service account when running in a pod. The
kubeconfig's current context (or `--context`) gives the server, the user and the default
namespace; exec plugins (gke-gcloud-auth-plugin) and client certificates are the library's.

In a pod the kubelet rotates the projected service-account token in place; the token is re-read
whenever the file changes (checked on every request, a stat), not once at start, so a
long-running operator never sends an expired token. kopf gets the same credentials through
`Credentials.token()` when it logs in again after a 401.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder_api.errors import UserError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass
class Credentials:
    configuration: Any  # kubernetes.client.Configuration, owned by this object
    default_namespace: str = "default"
    source: str = ""  # where they came from, for messages: a kubeconfig path and context, or in-cluster

    @property
    def server(self) -> str:
        return self.configuration.host.rstrip("/")

    def token(self) -> str | None:
        """The current bearer token (re-read if rotated), without its "Bearer " prefix."""
        value = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if not value:
            return None
        return value.split(" ", 1)[1] if value.lower().startswith("bearer ") else value

    @property
    def ca_path(self) -> str | None:
        return self.configuration.ssl_ca_cert

    @property
    def cert_path(self) -> str | None:
        return self.configuration.cert_file

    @property
    def key_path(self) -> str | None:
        return self.configuration.key_file

    @property
    def insecure(self) -> bool:
        return not self.configuration.verify_ssl


def load_credentials(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    env: dict | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Credentials:
    """UserError, naming what was tried and what to do, when there are none."""
    env = os.environ if env is None else env
    paths = _kubeconfig_paths(kubeconfig, env)
    if paths:
        return _from_kubeconfig(paths, context, explicit=bool(kubeconfig or env.get("KUBECONFIG")))
    if env.get("KUBERNETES_SERVICE_HOST") and (service_account_dir / "token").is_file():
        if context:
            raise UserError(
                f"--context {context} needs a kubeconfig, and there is none (in a pod the service "
                "account is used): pass --kubeconfig or drop --context"
            )
        return _in_cluster(env, service_account_dir)
    raise UserError(
        f"no usable Kubernetes credentials: no kubeconfig ({DEFAULT_KUBECONFIG} does not exist and "
        "KUBECONFIG is not set) and not running in a pod with a service account; point --kubeconfig "
        "or KUBECONFIG at a kubeconfig"
    )


def _kubeconfig_paths(kubeconfig: str | None, env) -> str | None:
    if kubeconfig:
        if not Path(kubeconfig).expanduser().is_file():
            raise UserError(
                f"no usable Kubernetes credentials in {kubeconfig}: the file does not exist; point "
                "--kubeconfig at a kubeconfig"
            )
        return kubeconfig
    listed = [p for p in (env.get("KUBECONFIG") or "").split(os.pathsep) if p]
    if listed:
        present = [p for p in listed if Path(p).expanduser().is_file()]
        if not present:
            raise UserError(
                f"no usable Kubernetes credentials in KUBECONFIG={env['KUBECONFIG']}: none of its "
                "files exists; point KUBECONFIG at a kubeconfig"
            )
        return os.pathsep.join(present)
    return DEFAULT_KUBECONFIG if Path(DEFAULT_KUBECONFIG).expanduser().is_file() else None


def _from_kubeconfig(paths: str, context: str | None, explicit: bool) -> Credentials:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    cfg = k8s.Configuration()
    try:
        k8s_config.load_kube_config(
            config_file=paths, context=context, client_configuration=cfg, persist_config=False
        )
        contexts, current = k8s_config.list_kube_config_contexts(config_file=paths)
    except (k8s_config.ConfigException, OSError, ValueError, TypeError, KeyError) as err:
        where = f"{paths}" + (f" (context {context})" if context else "")
        raise UserError(
            f"no usable Kubernetes credentials in {where}: {err}; "
            + (
                "fix the kubeconfig or choose another with --kubeconfig / --context"
                if explicit
                else "point --kubeconfig or KUBECONFIG at a kubeconfig"
            )
        ) from None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    name = (chosen or {}).get("name", "")
    return Credentials(cfg, namespace, f"{paths} (context {name})")


def _in_cluster(env, sa_dir: Path) -> Credentials:
    from kubernetes import client as k8s
    from kubernetes.config import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    cfg = k8s.Configuration()
    try:
        InClusterConfigLoader(
            token_filename=str(sa_dir / "token"), cert_filename=str(sa_dir / "ca.crt"), environ=env
        ).load_and_set(cfg)
    except (ConfigException, OSError) as err:
        raise UserError(f"the pod's service account credentials in {sa_dir} are unusable: {err}") from None
    cfg.refresh_api_key_hook = _TokenFile(sa_dir / "token")
    try:
        namespace = (sa_dir / "namespace").read_text().strip() or "default"
    except OSError:
        namespace = "default"
    return Credentials(cfg, namespace, f"in-cluster service account ({sa_dir})")


@dataclass
class _TokenFile:
    """refresh_api_key_hook: re-read the token when the file changed (the kubelet swaps it)."""

    path: Path
    _seen: tuple = field(default=(), repr=False)

    def __call__(self, cfg) -> None:
        try:
            st = self.path.stat()
        except OSError:
            return  # keep the last token; the request will say 401 if it is no longer valid
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            token = self.path.read_text().strip()
            if token:
                cfg.api_key["BearerToken"] = "bearer " + token
                self._seen = stamp
