"""The bundled digits, the builtin text encoder, the shard format and the resumable reader."""

import numpy as np
import pytest

from ladder_api.errors import UserError
from ladder_trainer.data import digits
from ladder_trainer.data.builtin_text import BuiltinTextEncoder
from ladder_trainer.data.format import read_manifest, write_dataset
from ladder_trainer.data.reader import BatchStream, open_data

from .conftest import make_run


def test_digits_splits_are_disjoint_scaled_and_captioned():
    train, test = digits.load("train"), digits.load("test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert train.images.shape[1:] == (8, 8, 1)
    assert train.images.min() == -1.0 and train.images.max() == 1.0
    assert set(np.unique(test.labels)) == set(range(10))
    tr = {a.tobytes() for a in train.images}
    assert sum(a.tobytes() in tr for a in test.images) < 5  # only genuine duplicate images
    assert train.captions[0] == digits.caption(train.labels[0])
    assert digits.caption(7) == "a handwritten digit seven"
    assert digits.from_uri("builtin:digits-test").labels.tolist() == test.labels.tolist()


def test_builtin_text_encoder_is_deterministic_and_distinguishes_captions():
    enc = BuiltinTextEncoder(32, 4)
    a = enc.encode([digits.caption(k) for k in range(10)])
    b = BuiltinTextEncoder(32, 4).encode([digits.caption(k) for k in range(10)])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10, 4, 32)
    # Captions share their first three words: only the last token differs.
    np.testing.assert_array_equal(a[3, :3], a[5, :3])
    assert not np.allclose(a[3, 3], a[5, 3])
    null = digits.null_context(32, 4)
    assert null.shape == (4, 32) and not np.allclose(null, a[0])


def test_record_round_trip_and_reader(tmp_path):
    rng = np.random.default_rng(0)
    lat = rng.standard_normal((50, 8, 8, 1)).astype(np.float32)
    ctx = rng.standard_normal((50, 4, 32)).astype(np.float32)
    uri = str(tmp_path / "ds")
    write_dataset(uri, lat, ctx, np.zeros((4, 32)), autoencoder={"kind": "identity"},
                  text_encoder="builtin-digits", part_size=16)
    m = read_manifest(uri)
    assert m.num_examples == 50 and len(m.parts) == 4 and m.latent_shape == (8, 8, 1)
    # A part is a plain .npy of records: NumPy reads it with no Ladder code.
    part = np.load(tmp_path / "ds" / m.parts[1].path, mmap_mode="r")
    np.testing.assert_array_equal(part["context"], ctx[16:32])
    run = make_run(tmp_path)
    data = open_data(run.data.model_copy(update={"train_uri": uri}), run.model)
    assert len(data.source) == 50
    np.testing.assert_array_equal(data.source[37]["latents"], lat[37])
    # Global batches are a per-epoch reshuffled permutation that depends only on the seed.
    s = BatchStream(data.source, 10, seed=3)
    first_epoch = np.concatenate([s.batch(i)["latents"] for i in range(5)])
    assert sorted(map(bytes, first_epoch)) == sorted(map(bytes, lat))
    assert not np.array_equal(s.batch(0)["latents"], s.batch(5)["latents"])
    again = BatchStream(data.source, 10, seed=3)
    np.testing.assert_array_equal(again.batch(7)["latents"], s.batch(7)["latents"])
    # Two hosts read disjoint halves of the same global batch.
    h0 = BatchStream(data.source, 10, 3, process_index=0, process_count=2).batch(2)["latents"]
    h1 = BatchStream(data.source, 10, 3, process_index=1, process_count=2).batch(2)["latents"]
    np.testing.assert_array_equal(np.concatenate([h0, h1]), s.batch(2)["latents"])


def test_bad_data_is_a_user_error_naming_the_field(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(UserError, match="no manifest.json"):
        open_data(run.data.model_copy(update={"train_uri": str(tmp_path / "missing")}), run.model)
    with pytest.raises(UserError, match="unknown builtin dataset"):
        open_data(run.data.model_copy(update={"train_uri": "builtin:mnist"}), run.model)
    wrong = make_run(tmp_path, ladder={"latentSize": 16})
    with pytest.raises(UserError, match="latentSize 8"):
        open_data(wrong.data, wrong.model)
    uri = str(tmp_path / "ds")
    write_dataset(uri, np.zeros((4, 8, 8, 1)), np.zeros((4, 4, 16)), np.zeros((4, 16)),
                  autoencoder={"kind": "identity"}, text_encoder="builtin-digits")
    with pytest.raises(UserError, match="contextTokens, ladder.contextDim"):
        open_data(run.data.model_copy(update={"train_uri": uri}), run.model)


def test_prefetching_stream_equals_direct_reads_and_resumes_at_any_step(tmp_path):
    """Prefetch changes when batches are read, never which: in order, after a jump (resumption)
    and with float16 storage, batch s is the same examples as an unprefetched read of s."""
    rng = np.random.default_rng(1)
    lat = rng.standard_normal((37, 8, 8, 1)).astype(np.float16)
    ctx = rng.standard_normal((37, 4, 32)).astype(np.float16)
    uri = str(tmp_path / "ds")
    write_dataset(uri, lat, ctx, np.zeros((4, 32)), autoencoder={"kind": "identity"},
                  text_encoder="builtin-digits", dtype="float16", part_size=10)
    run = make_run(tmp_path)
    source = open_data(run.data.model_copy(update={"train_uri": uri}), run.model).source
    direct = BatchStream(source, 8, seed=5, prefetch=0)
    ahead = BatchStream(source, 8, seed=5, prefetch=3)
    for step in [0, 1, 2, 3, 9, 10, 4]:
        got, want = ahead.batch(step), direct.batch(step)
        assert got["latents"].dtype == np.float16  # as stored: the train step widens on the device
        np.testing.assert_array_equal(got["latents"], want["latents"])
        np.testing.assert_array_equal(got["context"], want["context"])
        np.testing.assert_array_equal(want["latents"], lat[direct.indices(step)])
        np.testing.assert_array_equal(want["context"], ctx[direct.indices(step)])
    ahead.close()


def test_encoder_hashes_in_the_spec_must_match_the_data(tmp_path):
    uri = str(tmp_path / "ds")
    made = "sha256:" + "a" * 64
    write_dataset(uri, np.zeros((4, 8, 8, 1)), np.zeros((4, 4, 32)), np.zeros((4, 32)),
                  autoencoder={"kind": "identity", "hash": None},
                  text_encoder={"name": "builtin-digits", "hash": made})
    run = make_run(tmp_path)
    spec = run.data.model_copy(update={"train_uri": uri})
    assert open_data(spec, run.model).identity["text_encoder_hash"] == made  # no hash in the spec: name only

    def text(**kw):
        return spec.model_copy(update={"text_encoder": spec.text_encoder.model_copy(update=kw)})

    assert len(open_data(text(hash=made), run.model).source) == 4
    with pytest.raises(UserError, match="data.textEncoder.hash is sha256:b"):
        open_data(text(hash="sha256:" + "b" * 64), run.model)
    ae = spec.model_copy(update={"autoencoder": spec.autoencoder.model_copy(update={"hash": made})})
    with pytest.raises(UserError, match="autoencoder weights None but data.autoencoder.hash"):
        open_data(ae, run.model)
    renamed = text(name="clip-vit-l14")
    with pytest.raises(UserError, match="data.textEncoder.name is 'clip-vit-l14'"):
        open_data(renamed, run.model)


def test_v1_datasets_are_refused_naming_the_conversion(tmp_path):
    import json

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(json.dumps({"format": "ladder-latents/v1", "shards": []}))
    run = make_run(tmp_path)
    with pytest.raises(UserError, match="ladder prepare convert-v1"):
        open_data(run.data.model_copy(update={"train_uri": str(tmp_path / "old")}), run.model)
