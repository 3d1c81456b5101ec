"""`ladder operator`: kopf watches, the Controller decides and writes.

kopf is used for what it is good at (credentials, watch streams with reconnection and 410
handling, the initial listing, graceful shutdown) and nothing else: the handlers are `on.event`
handlers, which keep no per-object progress, so kopf itself never writes to the API. There is no
kopf finalizer, no last-handled-configuration annotation and no kopf Event posting; the only
writes are the Controller's, which is what keeps an idle operator silent (but for renewing its
Lease). kopf's peering is off (standalone): leader election is ladder_operator.leader's Lease,
held before kopf starts at all, so a standby neither watches nor writes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import replace

import kopf

from ladder_api.errors import UserError
from ladder_api.plan import CODE_VERSION
from ladder_kube.aio import AsyncClient
from ladder_kube.client import Client
from ladder_kube.credentials import Credentials, load_credentials
from ladder_kube.errors import ApiError
from ladder_kube.resources import EXPERIMENT, JOBSET, WORKLOAD
from ladder_operator import defaults, health, metrics
from ladder_operator import labels as lb
from ladder_operator.controller import Controller
from ladder_operator.leader import Elector, LeadershipLost, LeaseConfig

log = logging.getLogger("ladder.operator")


def build_registry(
    controller_ref: dict, creds: Credentials, kueue_version: str | None
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_):
        token = creds.token()  # re-read: kopf logs in again after a 401 (a rotated pod token)
        return kopf.ConnectionInfo(
            server=creds.server,
            token=token,
            scheme="Bearer" if token else None,
            ca_path=creds.ca_path,
            certificate_path=creds.cert_path,
            private_key_path=creds.key_path,
            insecure=creds.insecure,
            default_namespace=creds.default_namespace,
        )

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_):
        settings.peering.standalone = True
        settings.posting.enabled = False
        settings.watching.server_timeout = 600
        settings.watching.client_timeout = 660
        settings.networking.request_timeout = 60
        # Our handlers only enqueue; kopf's per-object workers need not linger (memory, shutdown).
        settings.queueing.idle_timeout = 1.0
        settings.queueing.exit_timeout = 0.5
        await controller_ref["controller"].prime()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_):
        await controller_ref["controller"].close()

    @kopf.on.event(EXPERIMENT.group, EXPERIMENT.version, EXPERIMENT.plural, registry=registry)
    async def experiment_event(event, **_):
        controller_ref["controller"].on_experiment(event.get("type"), event["object"])

    @kopf.on.event(
        JOBSET.group, JOBSET.version, JOBSET.plural, labels={lb.EXPERIMENT: kopf.PRESENT}, registry=registry
    )
    async def jobset_event(event, **_):
        controller_ref["controller"].on_jobset(event.get("type"), event["object"])

    if kueue_version:

        @kopf.on.event(WORKLOAD.group, kueue_version, WORKLOAD.plural, registry=registry)
        async def workload_event(event, **_):
            controller_ref["controller"].on_workload(event.get("type"), event["object"])

    return registry


async def _connect(creds: Credentials, concurrency: int) -> tuple[AsyncClient, str | None]:
    """The operator's client, and the Kueue version the API server serves (None: no Kueue)."""
    # A thread per concurrent reconcile, plus a few for the cleanups and events beside them.
    workers = concurrency + 4
    client = Client(creds, user_agent=f"ladder-operator/{CODE_VERSION}", on_error=metrics.count_api_error,
                    pool_size=workers)
    kube = AsyncClient(client, workers=workers)
    try:
        return kube, await kube.preferred_version(WORKLOAD.group)
    except ApiError as err:
        await kube.close()
        if err.status in (401, 403):
            raise UserError(
                f"the Kubernetes API server at {creds.server} refused the credentials of {creds.source} "
                f"({err}); log in again or choose another context (--context)"
            ) from None
        if not err.transient:
            raise
        raise UserError(
            f"cannot reach the Kubernetes API server at {creds.server} ({err}); check the kubeconfig "
            "context (--context) or that the cluster is up"
        ) from None


def _elector(creds: Credentials, lease: LeaseConfig | None) -> Elector | None:
    """Leader election on its own client and thread: renewals never wait behind reconciles."""
    if lease is None:
        return None
    lease = replace(lease, namespace=lease.namespace or creds.default_namespace)
    client = Client(creds, user_agent=f"ladder-operator/{CODE_VERSION}", on_error=metrics.count_api_error)
    return Elector(AsyncClient(client, workers=1), lease)


async def run_async(
    namespaces: list[str],
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    concurrency: int = 8,
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
    lease: LeaseConfig | None = None,
) -> None:
    """`lease`: elect a leader on that Lease (its namespace empty: the context's); None acts at
    once, alone."""
    site_defaults = defaults.load()
    creds = load_credentials(kubeconfig, context)  # UserError when there are none
    kube, kueue_version = await _connect(creds, concurrency)
    if not kueue_version:
        log.info("Kueue's API is not served: sizes go straight from Pending to Training")
    controller = Controller(
        kube,
        namespaces=namespaces or None,
        kueue_version=kueue_version,
        concurrency=concurrency,
        defaults=site_defaults,
    )
    elector = _elector(creds, lease)
    registry = build_registry({"controller": controller}, creds, kueue_version)
    # Ready once the existing objects are listed, or while standing by (ready to take over).
    ready = lambda: controller.primed or (elector is not None and not elector.leading)  # noqa: E731
    endpoints = await health.serve(metrics_port, ready) if metrics_port else None
    if endpoints:
        log.info("/healthz, /readyz and /metrics on :%d", metrics_port)
    stop = stop or asyncio.Event()
    try:
        if elector is None or await _stood_by(elector, stop):
            await _act(controller, registry, namespaces, elector, stop)
    finally:
        if elector is not None:
            await elector.release()
            await elector.kube.close()
        if endpoints:
            await endpoints.cleanup()


async def _stood_by(elector: Elector, stop: asyncio.Event) -> bool:
    """Wait for the Lease (True) or for SIGTERM/SIGINT or `stop` while standing by (False)."""
    loop = asyncio.get_running_loop()
    handled = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    acquire, stopped = asyncio.ensure_future(elector.acquire()), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if acquire.done():
            acquire.result()  # an unexpected failure surfaces here
    finally:
        for task in (acquire, stopped):
            task.cancel()
        for sig in handled:  # kopf installs its own
            loop.remove_signal_handler(sig)
    return elector.leading and not stop.is_set()


async def _act(controller: Controller, registry, namespaces: list[str], elector: Elector | None,
               stop: asyncio.Event) -> None:
    """Run kopf until it stops; with an elector, stop acting the moment the Lease is lost."""
    operator = asyncio.ensure_future(kopf.operator(
        registry=registry, standalone=True, namespaces=namespaces or [], clusterwide=not namespaces,
        stop_flag=stop,
    ))
    if elector is None:
        metrics.LEADER.set(1)  # alone: it acts
        await operator
        return
    holding = asyncio.ensure_future(elector.hold())
    await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
    if holding.done():  # hold() only ends by losing the Lease
        await controller.close()  # no more writes, before anyone else may take the Lease
        stop.set()
        await asyncio.gather(operator, return_exceptions=True)
        holding.result()  # raises LeadershipLost
    holding.cancel()
    await operator


def run(
    namespaces: list[str],
    *,
    metrics_port: int | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    verbose: bool = False,
    lease: LeaseConfig | None = None,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kopf").setLevel(logging.INFO if verbose else logging.WARNING)
    log.info("ladder operator starting (%s)", ", ".join(namespaces) if namespaces else "all namespaces")
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("ladder operator must run in the main thread (signal handling)")
    try:
        asyncio.run(run_async(namespaces, kubeconfig=kubeconfig, context=context, metrics_port=metrics_port,
                              lease=lease))
    except LeadershipLost as err:
        # Exit, so that the restart stands by: another process may be acting by now.
        log.error("%s; stopped acting and exiting", err)
        raise SystemExit(1) from None
