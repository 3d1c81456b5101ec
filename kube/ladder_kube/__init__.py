"""Ladder's one way to talk to the Kubernetes API: credentials, resource paths, the verbs the
operator needs, and the status writer the operator, the trainer and the evaluator share.

Why the official `kubernetes` package, synchronous, for all three components: the trainer and the
evaluator are synchronous programs that write a status a few times a minute, and the operator's
writes are a handful per transition (its watching is kopf's). One library with one credential
resolver (kubeconfig, exec plugins, in-cluster service accounts, TLS, proxies, as kubectl resolves
them) serves all three; `kubernetes_asyncio` would force an event loop into the pods for nothing.
Inside kopf's event loop the operator calls the same client through a bounded thread pool
(`ladder_kube.aio`), so a slow API call never blocks the loop and concurrency stays bounded.

Only the library's transport is used (`ApiClient.call_api` with auth from its Configuration):
objects stay plain JSON dicts, never the generated model classes, so custom resources, JobSets
and core kinds go through one code path and nothing is lost in a model round trip.

Layering: imports `ladder_api` and the `kubernetes` package only (no kopf, JAX or torch), and
only lazily, so `ladder_kube.resources` stays cheap for `ladder render`.
"""
