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


def test_shard_round_trip_and_reader(tmp_path):
    rng = np.random.default_rng(0)
    lat = rng.standard_normal((50, 8, 8, 1)).astype(np.float32)
    ctx = rng.standard_normal((50, 4, 32)).astype(np.float32)
    uri = str(tmp_path / "ds")
    write_dataset(uri, lat, ctx, np.zeros((4, 32)), autoencoder={"kind": "identity"},
                  text_encoder="builtin-digits", shard_size=16)
    m = read_manifest(uri)
    assert m.num_examples == 50 and len(m.shards) == 4 and m.latent_shape == (8, 8, 1)
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
