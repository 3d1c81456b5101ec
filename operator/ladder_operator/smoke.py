"""The objects hack/tpu-smoke.sh applies: one pod per host of a TPU slice, built by the same
``render.tpu_pod_spec`` as the training pods (non-root, read-only root filesystem, no
capabilities, same node selection, requests and /dev/shm), running ``python -m
ladder_trainer.smoke`` from the trainer image. What each check means: docs/tpu.md.

    python -m ladder_operator.smoke --slice v5litepod-8 --image IMAGE [--namespace NS] [--host-network]

prints a headless Service and an Indexed Job as YAML. On a slice of two or more hosts, Job index 0
receives and index 1 sends for the DCN bandwidth check (pods find each other by hostname through
the Service, as JobSet pods do); on one host only the device and memlock checks run.
"""

from __future__ import annotations

import argparse

from ladder_api.spec import SliceRequest
from ladder_api.tpu import slice_type
from ladder_operator.render import dump_yaml, scratch_volumes, tpu_pod_spec

APP_LABEL = "ladder.dev/smoke"


def smoke_objects(slice_name: str, image: str, namespace: str = "default", *, name: str = "ladder-tpu-smoke",
                  host_network: bool = False, seconds: int = 20) -> list[dict]:
    st = slice_type(slice_name)
    args = ["python", "-m", "ladder_trainer.smoke", "--chips", str(st.chips_per_host)]
    if st.hosts > 1:
        args += ["--peer", f"{name}-0.{name}", "--seconds", str(seconds)]
    container = {
        "name": "smoke",
        "image": image,
        "command": args,
        "env": [{"name": "HOME", "value": "/tmp"},
                {"name": "LADDER_SMOKE_HOST_NETWORK", "value": "1" if host_network else "0"}],
    }
    volumes, mounts = scratch_volumes()
    pod = tpu_pod_spec(SliceRequest(slice_type=slice_name), container, volumes, mounts,
                       host_network=host_network)
    pod["subdomain"] = name
    labels = {APP_LABEL: name}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"clusterIP": "None", "selector": dict(labels), "publishNotReadyAddresses": True},
    }
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "completionMode": "Indexed", "parallelism": st.hosts, "completions": st.hosts,
            "backoffLimit": 0, "ttlSecondsAfterFinished": 3600, "activeDeadlineSeconds": 1800,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    return [service, job]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ladder_operator.smoke", description=__doc__.splitlines()[0])
    p.add_argument("--slice", required=True, help="slice type (ladder_api.tpu), e.g. v5litepod-8")
    p.add_argument("--image", required=True, help="the trainer image")
    p.add_argument("--namespace", default="default")
    p.add_argument("--name", default="ladder-tpu-smoke")
    p.add_argument("--host-network", action="store_true", help="run on the nodes' network (as opted into)")
    p.add_argument("--seconds", type=int, default=20, help="DCN check duration")
    a = p.parse_args(argv)
    print(dump_yaml(smoke_objects(a.slice, a.image, a.namespace, name=a.name, host_network=a.host_network,
                                  seconds=a.seconds)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
