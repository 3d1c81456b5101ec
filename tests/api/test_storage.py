"""The storage layer on local paths, file:// URIs and gs:// (the fake-gcs-server emulator, the
real GCS JSON API): the same calls, the same answers, and errors that say what to do."""

from __future__ import annotations

import http.server
import json
import threading
import uuid

import pytest

from ladder_api import storage
from ladder_api.errors import UserError


@pytest.fixture(scope="module")
def bucket(gcs):
    return gcs.bucket("storage-test")


@pytest.fixture(params=["local", "file", "gs"])
def root(request, tmp_path) -> str:
    """A fresh, empty folder of each kind."""
    if request.param == "local":
        return str(tmp_path / "root")
    if request.param == "file":
        return f"file://{tmp_path}/root"
    return f"{request.getfixturevalue('bucket')}/{uuid.uuid4().hex[:8]}"


def test_write_read_and_ranges(root):
    uri = storage.join(root, "a", "b.txt")
    storage.write_text(uri, "hello\nworld\n")
    assert storage.read_text(uri) == "hello\nworld\n"
    assert storage.read_bytes(uri, start=6) == b"world\n"
    assert storage.read_bytes(uri, start=12) == b"" == storage.read_bytes(uri, start=100)
    assert storage.size(uri) == 12 and storage.exists(uri) and storage.exists(storage.join(root, "a"))
    storage.write_bytes(uri, b"x")  # replaced whole
    assert storage.read_bytes(uri) == b"x" and storage.size(uri) == 1
    assert storage.list_files(root) == [uri], "no temporary file is left behind"
    if not storage.is_remote(uri):  # readable as any file this user creates (not mkstemp's 0600)
        assert storage.local_path(uri).stat().st_mode & 0o777 == 0o666 & ~storage._UMASK


def test_missing_is_file_not_found(root):
    uri = storage.join(root, "nope.json")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(uri)
    assert storage.size(uri) is None and not storage.exists(uri)
    assert storage.list_dir(root) == [] and storage.list_files(root) == []


def test_upload_file_and_streamed_reads(root, tmp_path):
    """A local file uploaded in one step (no temporary left), read back as a stream in pieces."""
    src = tmp_path / "part.bin"
    data = bytes(range(256)) * 4099
    src.write_bytes(data)
    uri = storage.join(root, "parts", "p.bin")
    storage.upload_file(src, uri)
    assert storage.list_files(root) == [uri] and storage.size(uri) == len(data)
    with storage.open_read(uri) as f:
        assert f.read(1000) == data[:1000] and f.read() == data[1000:]
    with pytest.raises(FileNotFoundError), storage.open_read(storage.join(root, "none.bin")):
        pass


def test_exclusive_write_never_replaces(root):
    uri = storage.join(root, "once.json")
    storage.write_text(uri, "first", exclusive=True)
    with pytest.raises(FileExistsError):
        storage.write_text(uri, "second", exclusive=True)
    assert storage.read_text(uri) == "first"
    assert storage.list_files(root) == [uri]


def test_listing_one_level_and_all_levels(root):
    for name in ("results/w1-000001.json", "results/w1-000002.json", "results.json", "ckpt/2/meta",
                 "ckpt/10/meta", "ckpt/10/sub/x"):
        storage.write_text(storage.join(root, name), name)
    assert storage.list_dir(storage.join(root, "ckpt")) == ["10", "2"]
    assert storage.list_dir(root) == ["ckpt", "results", "results.json"]
    # a prefix is a folder: results/ does not take in its sibling results.json
    assert storage.list_files(storage.join(root, "results")) == [
        storage.join(root, "results", "w1-000001.json"), storage.join(root, "results", "w1-000002.json")]
    assert len(storage.list_files(root)) == 6


def test_delete_prefix_deletes_that_prefix_only(root):
    for name in ("exp/c32/checkpoints/200/params", "exp/c32/checkpoints/400/params", "exp/c32/metrics.jsonl",
                 "exp/c32/checkpoints-old/keep"):
        storage.write_text(storage.join(root, name), "x")
    assert storage.delete_prefix(storage.join(root, "exp/c32/checkpoints")) == 2
    left = [u.removeprefix(root + "/") for u in storage.list_files(root)]
    assert left == ["exp/c32/checkpoints-old/keep", "exp/c32/metrics.jsonl"]


def test_delete_under_a_missing_directory_or_bucket_is_missing(tmp_path, gcs):
    with pytest.raises(storage.Missing):
        storage.delete_prefix(str(tmp_path / "nope"))
    with pytest.raises(storage.Missing):
        storage.delete_prefix("gs://no-such-bucket-here/exp")


def test_join():
    assert storage.join("gs://b/", "/x/", "c8") == "gs://b/x/c8"
    assert storage.join("/runs", "tiny") == "/runs/tiny"


@pytest.mark.parametrize("call", [
    lambda u: storage.read_bytes(u), lambda u: storage.write_text(u, "x"), lambda u: storage.list_dir(u),
    lambda u: storage.size(u), lambda u: storage.check_access(u),
])
def test_a_missing_bucket_is_a_user_error_naming_it(gcs, call):
    with pytest.raises(UserError, match=r"gs://no-such-bucket/x/y: the bucket gs://no-such-bucket does not "
                                        r"exist; create it"):
        call("gs://no-such-bucket/x/y")


def test_an_unreachable_endpoint_is_a_user_error_naming_the_uri_and_restartable_in_a_pod(monkeypatch):
    """At a command line one line naming the URI (UserError); in a trainer or evaluator pod an
    infrastructure fault, so the JobSet restarts instead of failing the experiment."""
    import socket

    from ladder_api import exitcodes
    from ladder_api.failures import classify

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(storage, "RETRY_DEADLINE_S", 0.5)
    where = rf"gs://bkt/x: cannot reach Cloud Storage at http://127.0.0.1:{port}"
    with pytest.raises(UserError, match=where) as err:
        storage.read_bytes("gs://bkt/x")
    assert classify(err.value).exit_code == exitcodes.RESTARTABLE


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request as GCS answers an account without access: 403 with a JSON error."""

    def _refuse(self):
        body = json.dumps({"error": {"code": 403, "message": "caller does not have storage.objects.get"}})
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_DELETE = _refuse  # noqa: N815 (http.server's names)

    def log_message(self, *args):
        pass


def test_permission_denied_is_a_user_error_saying_what_to_grant(monkeypatch):
    """The emulator grants everything, so a stand-in endpoint refuses (the one mock here: the
    client, its request and its error handling are the real ones)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
        denied = r"gs://locked/x: permission denied .*roles/storage.objectAdmin"
        with pytest.raises(UserError, match=denied):
            storage.read_bytes("gs://locked/x")
        with pytest.raises(UserError, match=denied):
            storage.write_text("gs://locked/x", "1")
    finally:
        server.shutdown()
