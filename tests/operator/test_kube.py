"""The operator's REST client: credentials as kubectl resolves them, a rotating pod token, and the
local API server's answers mapped to ApiError / None."""

from __future__ import annotations

import asyncio
import os

from ladder_operator.kube import Credentials, Kube, load_credentials, resource_path


def test_kubeconfig_credentials(apiserver):
    creds = load_credentials(str(apiserver.kubeconfig))
    assert (
        creds.server == apiserver.url
        and creds.token == "ladder-local"
        and creds.default_namespace == "default"
    )


def test_rotated_token_is_re_read(tmp_path):
    token = tmp_path / "token"
    token.write_text("one")
    kube = Kube(Credentials(server="http://x", token_path=str(token)))
    assert kube._token() == "one"
    token.write_text("two")
    os.utime(token, (1, 1))
    assert kube._token() == "two"


def test_create_conflict_is_done_and_errors_carry_the_status(apiserver):
    async def run():
        kube = Kube(load_credentials(str(apiserver.kubeconfig)))
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k", "namespace": "default"}}
        try:
            assert (await kube.create(cm))["metadata"]["uid"]
            assert await kube.create(cm) is None, "409 AlreadyExists is done"
            assert await kube.delete(resource_path("v1", "configmaps", "default", "missing")) is None
            assert await kube.preferred_version("kueue.x-k8s.io") == "v1beta2"
            assert await kube.preferred_version("nope.example.com") is None
        finally:
            await kube.close()

    asyncio.run(run())
