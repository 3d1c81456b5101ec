"""Credentials as kubectl resolves them: --kubeconfig, KUBECONFIG (a merged list), ~/.kube/config,
then the pod's service account (whose rotating token is re-read); one UserError when none works."""

from __future__ import annotations

import os

import pytest
import yaml

from ladder_api.errors import UserError
from ladder_kube.credentials import load_credentials
from ladder_testing.apiserver.fixture import write_kubeconfig


def _two_contexts(path, url):
    write_kubeconfig(path, url, namespace="research")
    doc = yaml.safe_load(path.read_text())
    doc["contexts"].append(
        {
            "name": "other",
            "context": {"cluster": "ladder-local", "user": "ladder-local", "namespace": "elsewhere"},
        }
    )
    path.write_text(yaml.safe_dump(doc))
    return path


def test_kubeconfig_gives_server_token_and_the_contexts_namespace(tmp_path):
    kc = _two_contexts(tmp_path / "kc", "http://127.0.0.1:1")
    creds = load_credentials(str(kc), env={})
    assert (creds.server, creds.token(), creds.default_namespace) == (
        "http://127.0.0.1:1",
        "ladder-local",
        "research",
    )
    assert load_credentials(str(kc), "other", env={}).default_namespace == "elsewhere"


def test_kubeconfig_variable_is_a_path_list_and_missing_entries_are_skipped(tmp_path, monkeypatch):
    kc = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:2")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config to fall back on
    env = {"KUBECONFIG": os.pathsep.join([str(tmp_path / "absent"), str(kc)])}
    assert load_credentials(env=env).server == "http://127.0.0.1:2"


def test_home_kubeconfig_is_used_before_the_service_account(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_kubeconfig(home / ".kube" / "config", "http://127.0.0.1:3")
    monkeypatch.setenv("HOME", str(home))
    sa = _service_account(tmp_path / "sa", "pod-token")
    creds = load_credentials(
        env={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, service_account_dir=sa
    )
    assert creds.server == "http://127.0.0.1:3"


def _service_account(sa, token):
    sa.mkdir()
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (sa / "namespace").write_text("ladder-system\n")
    return sa


def test_in_a_pod_the_service_account_and_its_rotated_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    sa = _service_account(tmp_path / "sa", "one")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    creds = load_credentials(env=env, service_account_dir=sa)
    assert creds.server == "https://[fd00::1]:443" and creds.default_namespace == "ladder-system"
    assert creds.ca_path == str(sa / "ca.crt") and not creds.insecure
    assert creds.token() == "one"
    # The kubelet swaps the file for a new one (a new inode); the next request sends the new token.
    (sa / "token.new").write_text("two")
    os.replace(sa / "token.new", sa / "token")
    assert creds.token() == "two"
    # What the client sends: the Authorization header of a serialized request.
    from kubernetes import client as k8s

    headers = k8s.ApiClient(creds.configuration).param_serialize(
        "GET", "/api", auth_settings=["BearerToken"]
    )[2]
    assert headers["authorization"].lower() == "bearer two"


def test_no_credentials_is_one_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError, match="no usable Kubernetes credentials.*--kubeconfig"):
        load_credentials(env={})
    with pytest.raises(UserError, match=str(tmp_path / "nope")):
        load_credentials(str(tmp_path / "nope"), env={})
    with pytest.raises(UserError, match="KUBECONFIG="):
        load_credentials(env={"KUBECONFIG": str(tmp_path / "gone")})
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(UserError, match=str(broken)):
        load_credentials(str(broken), env={})
    kc = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:4")
    with pytest.raises(UserError, match="context nope"):
        load_credentials(str(kc), "nope", env={})
    sa = _service_account(tmp_path / "sa", "t")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(UserError, match="--context"):
        load_credentials(context="x", env=env, service_account_dir=sa)
