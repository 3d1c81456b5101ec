"""The controller's checkpoint cleanup (ladder_operator.storage, on ladder_api.storage) against
fake-gcs-server (the real GCS JSON API, locally) and local paths: the prefix goes, nothing else
does, and a missing bucket or directory is `Missing`, which the controller reports in an Event."""

from __future__ import annotations

import pytest

from ladder_api import storage
from ladder_operator.storage import Missing, store_for


def test_gcs_prefix_is_deleted_and_nothing_else(gcs):
    bucket = gcs.bucket("ckpts")
    for path in ("exp/c32/checkpoints/200/params", "exp/c32/checkpoints/400/params", "exp/c64/metrics.jsonl",
                 "other/c32/keep"):
        storage.write_text(f"{bucket}/{path}", "x")
    assert store_for(f"{bucket}/exp").delete_prefix(f"{bucket}/exp") == 3
    assert storage.list_files(bucket) == [f"{bucket}/other/c32/keep"]


def test_missing_bucket_is_reported_as_missing(gcs):
    with pytest.raises(Missing):
        store_for("gs://no-such-bucket/exp").delete_prefix("gs://no-such-bucket/exp")


def test_local_paths(tmp_path):
    (tmp_path / "exp" / "c32").mkdir(parents=True)
    (tmp_path / "exp" / "c32" / "a").write_text("x")
    assert store_for(str(tmp_path)).delete_prefix(str(tmp_path / "exp")) == 1
    assert not (tmp_path / "exp").exists()
    with pytest.raises(Missing):
        store_for(str(tmp_path)).delete_prefix(f"file://{tmp_path}/exp")
