"""`python -m ladder_trainer.smoke`: what hack/tpu-smoke.sh runs inside a TPU pod shaped exactly
like a training pod (non-root uid 1000, read-only root filesystem, no capabilities, no privilege,
RuntimeDefault seccomp; see docs/tpu.md for why each check matters).

Each check prints one JSON line {"check", "ok", ...}; the exit code is 0 only if all passed.

- identity: running as uid 1000, no effective capabilities, root filesystem read-only.
- devices: the TPU device files the device plugin hands over are there and openable, JAX sees
  exactly --chips TPU devices, and a psum across them and a bf16 matmul give the right answers.
- memlock: RLIMIT_MEMLOCK is unlimited (or at least --memlock-gib), and mlock of a 1 GiB buffer
  succeeds without CAP_IPC_LOCK (the TPU runtime pins host buffers for DMA).
- dcn (with --peer, on a slice of two or more hosts): TCP throughput between two hosts' pods, with
  --streams parallel connections for --seconds. Job index 0 receives and reports Gbit/s, index 1
  sends to --peer (index 0's hostname); over the pod network, or the node's with hostNetwork.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import resource
import socket
import sys
import threading
import time

GIB = 1024**3
PORT = 5201  # iperf's; any port works between pods, and 5201 is unlikely to be taken on a node
CHUNK = 1 << 20


def emit(check: str, ok: bool, **details) -> bool:
    print(json.dumps({"check": check, "ok": bool(ok), **details}), flush=True)
    return bool(ok)


def check_identity() -> bool:
    with open("/proc/self/status") as f:
        cap_eff = next((line.split()[1] for line in f if line.startswith("CapEff")), "?")
    try:
        with open("/usr/.ladder-smoke", "w"):
            read_only = False
    except OSError:
        read_only = True
    ok = os.getuid() == 1000 and cap_eff != "?" and int(cap_eff, 16) == 0 and read_only
    return emit("identity", ok, uid=os.getuid(), cap_eff=cap_eff, root_fs_read_only=read_only)


def check_devices(chips: int) -> bool:
    files = sorted(glob.glob("/dev/vfio/*") + glob.glob("/dev/accel*"))
    unopenable = []
    for f in files:
        if f.endswith("/vfio/vfio"):
            continue
        try:
            os.close(os.open(f, os.O_RDWR))
        except OSError as err:
            unopenable.append(f"{f}: {err.strerror}")
    try:
        import jax
        import jax.numpy as jnp

        devices = jax.local_devices()
        platform = devices[0].platform
        n = len(devices)
        total = jax.pmap(lambda x: jax.lax.psum(x, "i"), axis_name="i")(jnp.ones((n,)))
        a = jnp.ones((4096, 4096), jnp.bfloat16)
        product = float((a @ a)[0, 0])
        ok = platform == "tpu" and n == chips and float(total[0]) == n and product == 4096.0
        return emit("devices", ok and not unopenable, platform=platform, count=n, expected=chips,
                    device_files=files, unopenable=unopenable, psum=float(total[0]), matmul=product)
    except Exception as err:  # noqa: BLE001 - the report is the point
        return emit("devices", False, device_files=files, unopenable=unopenable,
                    error=f"{type(err).__name__}: {err}")


def check_memlock(min_gib: float) -> bool:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    unlimited = soft == resource.RLIM_INFINITY
    enough = unlimited or soft >= min_gib * GIB
    libc = ctypes.CDLL(None, use_errno=True)
    size = GIB if enough else min(soft, GIB)
    buf = ctypes.create_string_buffer(size)
    locked = libc.mlock(buf, ctypes.c_size_t(size)) == 0
    err = os.strerror(ctypes.get_errno()) if not locked else None
    if locked:
        libc.munlock(buf, ctypes.c_size_t(size))
    return emit("memlock", enough and locked, limit="unlimited" if unlimited else soft,
                mlock_bytes=size, mlock_ok=locked, error=err)


def _drain(conn: socket.socket, counter: list[int]) -> None:
    with conn:
        while data := conn.recv(CHUNK):
            counter[0] += len(data)


def serve(port: int, streams: int, ready: threading.Event | None = None) -> float:
    """Accept `streams` connections, count bytes until all close; returns Gbit/s received."""
    with socket.create_server(("", port), reuse_port=False) as srv:
        srv.listen(streams)
        if ready is not None:
            ready.set()
        counters, threads, start = [], [], None
        for _ in range(streams):
            conn, _ = srv.accept()
            start = start or time.perf_counter()
            counters.append([0])
            threads.append(threading.Thread(target=_drain, args=(conn, counters[-1])))
            threads[-1].start()
        for t in threads:
            t.join()
        return sum(c[0] for c in counters) * 8 / (time.perf_counter() - start) / 1e9


def send(host: str, port: int, streams: int, seconds: float, connect_timeout: float = 600) -> None:
    """Open `streams` connections to host (retrying until it listens) and write for `seconds`."""
    payload = b"\0" * CHUNK

    def one():
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                conn = socket.create_connection((host, port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        with conn:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                conn.sendall(payload)

    threads = [threading.Thread(target=one) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ladder_trainer.smoke", description=__doc__.splitlines()[0])
    p.add_argument("--chips", type=int, required=True, help="TPU chips this host must show")
    p.add_argument("--memlock-gib", type=float, default=64.0, help="least RLIMIT_MEMLOCK if not unlimited")
    p.add_argument("--peer", help="DCN check: Job index 0's hostname (index 0 receives, 1 sends)")
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--port", type=int, default=PORT)
    args = p.parse_args(argv)
    ok = check_identity()
    ok = check_devices(args.chips) and ok
    ok = check_memlock(args.memlock_gib) and ok
    index = os.environ.get("JOB_COMPLETION_INDEX", "")
    role = {"0": "server", "1": "client"}.get(index) if args.peer else None
    if role == "server":
        gbps = serve(args.port, args.streams)
        ok = emit("dcn", gbps > 0, gbit_per_s=round(gbps, 2), streams=args.streams,
                  host_network=os.environ.get("LADDER_SMOKE_HOST_NETWORK") == "1") and ok
    elif role == "client":
        send(args.peer, args.port, args.streams, args.seconds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
