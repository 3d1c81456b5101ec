"""Files and objects at a local path, a file:// URI or a gs:// URI: the one storage layer.

Every Ladder component reads and writes its run files through here (the evaluator's prompts,
statistics, samples and results, the trainer's metrics, `ladder run` observing a run, the report,
the operator's checkpoint cleanup). Orbax and the training-data reader take an epath instead
(`as_epath`); that is their own path layer.

gs:// goes through google-cloud-storage, imported only when a gs:// URI is used (so ladder_api
stays importable without it). It honours STORAGE_EMULATOR_HOST (fake-gcs-server in tests), and,
unlike gcsfs behind epath, keeps no listing cache, so a process polling a prefix sees what other
processes wrote since.

Errors: a missing file or object raises FileNotFoundError (callers name it in a UserError, or
treat it as "not yet"); a missing bucket, missing credentials, a permission refusal or an
unreachable endpoint raise a UserError that names the URI and what to do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ladder_api.errors import UnreachableError, UserError

GS = "gs://"
FILE = "file://"
# How long one call keeps retrying transient failures (429, 5xx, dropped connections) before the
# URI is reported unreachable. Generous: a training run should ride out a network blip.
RETRY_DEADLINE_S = 120.0
_UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it); restored next line
os.umask(_UMASK)


class Missing(FileNotFoundError):  # noqa: N818 (reads as a state at the call site)
    """The bucket or local directory to delete under does not exist."""


def is_remote(uri: str) -> bool:
    return str(uri).startswith(GS)


def local_path(uri: str | os.PathLike) -> Path:
    s = str(uri)
    if is_remote(s):
        raise ValueError(f"{s} is not a local path")
    return Path(s.removeprefix(FILE))


def join(base: str, *parts: str) -> str:
    """`base/part/...` with exactly one slash between parts, for paths and URIs alike."""
    out = str(base).rstrip("/")
    for p in parts:
        out = f"{out}/{str(p).strip('/')}"
    return out


def as_epath(uri: str):
    """The etils epath of a URI, for libraries that take one (orbax, the data reader)."""
    from etils import epath

    return epath.Path(str(uri).removeprefix(FILE))


# --- reading and writing -------------------------------------------------------------------------


def read_bytes(uri: str, start: int = 0) -> bytes:
    """The content from byte `start` on (b"" when start is at or past the end)."""
    if is_remote(uri):
        return _gcs_read(uri, start)
    with local_path(uri).open("rb") as f:
        f.seek(start)
        return f.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode()


def write_bytes(uri: str, data: bytes, *, exclusive: bool = False) -> None:
    """Replace `uri` with `data` in one step: a reader sees the old content or the new, never part.

    Local paths are written to a temporary file in the same folder and renamed over the target.
    `exclusive`: create only, raising FileExistsError if `uri` exists (a write-once object: two
    writers can never replace each other's).
    """
    if is_remote(uri):
        _gcs_write(uri, data, exclusive)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if the target exists; rename would replace it
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(uri: str, text: str, *, exclusive: bool = False) -> None:
    write_bytes(uri, text.encode(), exclusive=exclusive)


def upload_file(path: str | os.PathLike, uri: str) -> None:
    """Copy a local file to `uri` in one step, streaming (a part of a training set is gigabytes:
    it never sits in memory). Like write_bytes, a reader sees the whole file or none of it: locally
    a temporary file renamed over the target, on GCS one (resumable) upload."""
    if is_remote(uri):
        with _gcs_errors(uri):
            _blob(uri).upload_from_filename(str(path), retry=_retry())
        return
    target = local_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out, 16 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def open_read(uri: str) -> Iterator:
    """A binary file object reading `uri` front to back without holding it in memory (an input
    tar shard of several gigabytes is streamed). FileNotFoundError when there is none."""
    if not is_remote(uri):
        with local_path(uri).open("rb") as f:
            yield f
        return
    if _gcs_size(uri) is None:  # the reader would only fail at its first read
        raise FileNotFoundError(uri)
    with _gcs_errors(uri):
        reader = _blob(uri).open("rb", retry=_retry())
    try:
        yield reader
    finally:
        reader.close()


def size(uri: str) -> int | None:
    """Bytes in the file or object, None if there is none."""
    if is_remote(uri):
        return _gcs_size(uri)
    path = local_path(uri)
    return path.stat().st_size if path.is_file() else None


def exists(uri: str) -> bool:
    """A file or object at `uri`, or anything under it."""
    if is_remote(uri):
        return _gcs_size(uri) is not None or bool(_gcs_list(uri, delimiter=True, limit=1))
    return local_path(uri).exists()


# --- listing and deleting ------------------------------------------------------------------------


def list_dir(uri: str) -> list[str]:
    """Names of what is directly under `uri` (files and folders; on GCS, objects and common
    prefixes), sorted; [] when there is nothing."""
    if is_remote(uri):
        return sorted(n.rstrip("/").rsplit("/", 1)[-1] for n in _gcs_list(uri, delimiter=True))
    try:
        return sorted(p.name for p in local_path(uri).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def list_files(uri: str) -> list[str]:
    """URIs of every file or object under `uri`, at any depth, sorted; [] when none."""
    if is_remote(uri):
        bucket = _split(uri)[0]
        return sorted(f"{GS}{bucket}/{name}" for name in _gcs_list(uri, delimiter=False))
    root = local_path(uri)
    if not root.is_dir():
        return []
    prefix = str(uri).rstrip("/")
    return sorted(f"{prefix}/{p.relative_to(root).as_posix()}" for p in root.rglob("*") if p.is_file())


def delete_prefix(uri: str) -> int:
    """Delete everything under `uri`; return how many files or objects went. Raises Missing when
    the bucket or the local directory does not exist."""
    if not is_remote(uri):
        path = local_path(uri)
        if not path.exists():
            raise Missing(f"{path} does not exist")
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count
    if not _bucket_exists(uri):
        raise Missing(f"bucket {GS}{_split(uri)[0]} does not exist")
    from google.api_core import exceptions

    bucket = _client(uri).bucket(_split(uri)[0])
    names = _gcs_list(uri, delimiter=False)
    with _gcs_errors(uri):
        for name in names:
            with contextlib.suppress(exceptions.NotFound):  # gone meanwhile: what was wanted
                bucket.blob(name).delete(retry=_retry())
    return len(names)


def check_access(uri: str) -> None:
    """Fail now, with a UserError saying what to do, if `uri` cannot be listed (missing bucket,
    no credentials, no permission, endpoint unreachable) rather than deep inside a run."""
    if is_remote(uri):
        _gcs_list(uri, delimiter=True, limit=1)


# --- google-cloud-storage ------------------------------------------------------------------------

_local = threading.local()
_buckets_seen: set[tuple[str | None, str]] = set()  # (endpoint, bucket) known to exist


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = str(uri)[len(GS):].partition("/")
    return bucket, name


def _client(uri: str):
    """One client per thread and emulator endpoint (tests switch STORAGE_EMULATOR_HOST)."""
    key = os.environ.get("STORAGE_EMULATOR_HOST")
    clients = _local.__dict__.setdefault("clients", {})
    if key not in clients:
        from google.cloud import storage

        with _gcs_errors(uri):
            clients[key] = storage.Client()
    return clients[key]


def _blob(uri: str):
    bucket, name = _split(uri)
    return _client(uri).bucket(bucket).blob(name)


def _retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(RETRY_DEADLINE_S)


def _no_bucket(uri: str) -> UserError:
    bucket = _split(uri)[0]
    return UserError(
        f"{uri}: the bucket gs://{bucket} does not exist; create it (gcloud storage buckets create "
        f"gs://{bucket}) or correct the URI"
    )


@contextlib.contextmanager
def _gcs_errors(uri: str) -> Iterator[None]:
    """google-cloud-storage's failures as the errors this module promises."""
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except exceptions.NotFound:
        if not _bucket_exists(uri):
            raise _no_bucket(uri) from None
        raise FileNotFoundError(uri) from None
    except (exceptions.Forbidden, exceptions.Unauthorized) as err:
        raise UserError(
            f"{uri}: permission denied ({err.message}); give this machine's account read and write "
            f"access to gs://{_split(uri)[0]} (roles/storage.objectAdmin), or log in with "
            "`gcloud auth application-default login`"
        ) from None
    except auth_exceptions.DefaultCredentialsError:
        raise UserError(
            f"{uri}: no Google Cloud credentials; run `gcloud auth application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from None
    except (exceptions.RetryError, exceptions.ServerError, exceptions.TooManyRequests,
            auth_exceptions.TransportError, ConnectionError, TimeoutError) as err:
        raise _unreachable(uri, err) from None
    except OSError as err:  # requests' connection errors are OSErrors
        if isinstance(err, FileNotFoundError | FileExistsError):
            raise
        raise _unreachable(uri, err) from None


def _unreachable(uri: str, err: BaseException) -> UnreachableError:
    where = os.environ.get("STORAGE_EMULATOR_HOST") or "storage.googleapis.com"
    return UnreachableError(
        f"{uri}: cannot reach Cloud Storage at {where} ({err.__class__.__name__}: {str(err)[:200]}); "
        "check the network (and STORAGE_EMULATOR_HOST if you use an emulator)"
    )


def _bucket_exists(uri: str) -> bool:
    """Whether the bucket of `uri` exists, asked by listing it (objects.list, which an object-only
    role grants; buckets.get would need more). Remembered once seen."""
    from google.api_core import exceptions

    key = (os.environ.get("STORAGE_EMULATOR_HOST"), _split(uri)[0])
    if key in _buckets_seen:
        return True
    with _gcs_errors(f"{GS}{key[1]}"):
        try:
            list(_client(uri).list_blobs(key[1], max_results=1, retry=_retry()))
        except exceptions.NotFound:
            return False
    _buckets_seen.add(key)
    return True


def _gcs_read(uri: str, start: int) -> bytes:
    from google.api_core import exceptions

    with _gcs_errors(uri):
        try:
            return _blob(uri).download_as_bytes(start=start or None, retry=_retry())
        except exceptions.RequestRangeNotSatisfiable:
            return b""


def _gcs_write(uri: str, data: bytes, exclusive: bool) -> None:
    from google.api_core import exceptions

    with _gcs_errors(uri):
        try:
            # if_generation_match=0: create only. It also makes the upload safe to retry; a whole
            # object replaced with the same bytes is too, so both retry.
            _blob(uri).upload_from_string(data, if_generation_match=0 if exclusive else None,
                                          retry=_retry())
        except exceptions.PreconditionFailed:
            raise FileExistsError(uri) from None


def _gcs_size(uri: str) -> int | None:
    bucket, name = _split(uri)
    if not name:
        return None
    with _gcs_errors(uri):
        blob = _client(uri).bucket(bucket).get_blob(name, retry=_retry())
    if blob is None and not _bucket_exists(uri):
        raise _no_bucket(uri)
    return None if blob is None else blob.size


def _gcs_list(uri: str, *, delimiter: bool, limit: int | None = None) -> list[str]:
    """Object names under `uri`/ (or, with delimiter, the names and common prefixes one level
    down)."""
    bucket, name = _split(uri)
    prefix = name.rstrip("/") + "/" if name else ""
    with _gcs_errors(uri):
        pages = _client(uri).list_blobs(bucket, prefix=prefix, delimiter="/" if delimiter else None,
                                        max_results=limit, retry=_retry())
        names = [b.name for b in pages]
        if delimiter:
            names += list(pages.prefixes)
    _buckets_seen.add((os.environ.get("STORAGE_EMULATOR_HOST"), bucket))
    return names
