"""Evaluation prompts: the builtin digits split and a production .npz of embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from ladder_api.errors import UserError
from ladder_api.loading import parse_experiment
from ladder_api.plan import expand
from ladder_evaluator import prompts


def _run(uri: str, dim=8, tokens=4, num_samples=2, train_uri="builtin:digits"):
    exp = parse_experiment({
        "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "p"},
        "spec": {
            "ladder": {"widths": [16], "contextDim": dim, "contextTokens": tokens, "channelMult": [1, 2],
                       "numResBlocks": 1, "attentionLevels": [1], "numHeads": 2, "normGroups": 8,
                       "latentChannels": 1, "latentSize": 8},
            "data": {"referenceSet": {"name": "ref", "uri": uri}, "trainUri": train_uri},
            "evaluation": {"numSamples": num_samples},
            "storage": {"outputUri": "/tmp/unused"},
        },
    })
    return expand(exp).runs[0]


def test_builtin_digits_prompts_match_the_trainer_embeddings():
    from ladder_trainer.data import digits

    p = prompts.load(_run("builtin:digits-test"))
    split = digits.load("test")
    assert len(p) == len(split) and p.captions[0] == split.captions[0]
    np.testing.assert_array_equal(p.context[:3], digits.encode_captions(split.captions[:3], 8, 4))
    np.testing.assert_array_equal(p.uncond, digits.null_context(8, 4))
    ctx, caps, labels = p.take(len(p) - 1, 3)  # wraps around: prompt i mod N
    assert caps[1] == split.captions[0] and labels[1] == split.labels[0] and ctx.shape == (3, 4, 8)


def _shards(tmp_path, null, text_encoder: dict | str = "t"):
    from ladder_trainer.data.format import write_dataset

    uri = str(tmp_path / "shards")
    null = np.asarray(null, np.float32)
    write_dataset(uri, np.zeros((2, 8, 8, 1), np.float32), np.ones((2, *null.shape), np.float32), null,
                  autoencoder={"kind": "identity"}, text_encoder=text_encoder)
    return uri


def test_npz_prompts_and_their_errors(tmp_path):
    good = tmp_path / "prompts.npz"
    np.savez(good, captions=np.array(["a cat", "a dog"]), context=np.ones((2, 4, 8), np.float32),
             uncond=np.zeros((4, 8), np.float32))
    p = prompts.load(_run(str(good), train_uri=_shards(tmp_path, np.zeros((4, 8)))))
    assert p.sha256.startswith("sha256:") and len(p.sha256) == 71
    assert p.sha256 != prompts.load(_run("builtin:digits-test")).sha256
    assert p.captions == ("a cat", "a dog") and p.labels is None and p.images is None
    with pytest.raises(UserError, match="contextDim 16"):
        prompts.load(_run(str(good), dim=16))
    with pytest.raises(UserError, match="referenceSet.uri"):
        prompts.load(_run(str(tmp_path / "missing.npz")))
    bad = tmp_path / "bad.npz"
    np.savez(bad, captions=np.array(["x"]))
    with pytest.raises(UserError, match="captions, context, uncond"):
        prompts.load(_run(str(bad)))


def test_fewer_prompts_than_samples_are_refused_not_wrapped(tmp_path):
    with pytest.raises(UserError, match="numSamples is 5000"):
        prompts.load(_run("builtin:digits-test", num_samples=5000))
    path = tmp_path / "p.npz"
    np.savez(path, captions=np.array(["a"]), context=np.ones((1, 4, 8), np.float32),
             uncond=np.zeros((4, 8), np.float32))
    with pytest.raises(UserError, match="holds 1 prompts but evaluation.numSamples is 2"):
        prompts.load(_run(str(path), train_uri=_shards(tmp_path, np.zeros((4, 8)))))


def test_the_unconditional_embedding_must_be_the_training_null_context(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, captions=np.array(["a", "b"]), context=np.ones((2, 4, 8), np.float32),
             uncond=np.zeros((4, 8), np.float32))
    other = _shards(tmp_path, np.full((4, 8), 0.5, np.float32))
    with pytest.raises(UserError, match="unconditional embedding .* differs from the null context"):
        prompts.load(_run(str(path), train_uri=other))
    with pytest.raises(UserError, match="null context"):
        prompts.load(_run(str(path)))  # digits' null context is not zeros


def _big_prompts(path, n=600, tokens=77, dim=256):
    """30 MB of float16 embeddings (the paper's file is 4.7 GB: 30k x 77 x 1024)."""
    rng = np.random.default_rng(0)
    context = rng.standard_normal((n, tokens, dim)).astype(np.float16)
    np.savez(path, captions=np.array([f"caption {i}" for i in range(n)]), context=context,
             uncond=np.zeros((tokens, dim), np.float32))
    return context


def test_prompts_are_memory_mapped_not_read_whole(tmp_path):
    """An evaluator holds the batch in flight, never the whole set: loading a 30 MB prompts file
    allocates a small fraction of it, and each batch reads exactly its rows."""
    import tracemalloc

    path = tmp_path / "p.npz"
    context = _big_prompts(path)
    run = _run(str(path), dim=256, tokens=77, train_uri=_shards(tmp_path, np.zeros((77, 256))))
    tracemalloc.start()
    p = prompts.load(run)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < context.nbytes / 10, f"loading allocated {peak} bytes of a {context.nbytes}-byte set"
    assert isinstance(p.context, np.memmap)
    ctx, caps, _ = p.take(598, 4)  # wraps around
    assert ctx.dtype == np.float32 and caps == ("caption 598", "caption 599", "caption 0", "caption 1")
    np.testing.assert_array_equal(ctx, context[[598, 599, 0, 1]].astype(np.float32))


def test_compressed_and_remote_prompts_read_the_same(tmp_path, gcs):
    """A compressed .npz is read whole (it cannot be mapped); a gs:// one is streamed to a local
    file and mapped. Both give the same rows and the hash of the file's bytes."""
    from ladder_api import storage

    plain, packed = tmp_path / "p.npz", tmp_path / "c.npz"
    context = _big_prompts(plain, n=40, tokens=4, dim=8)
    with np.load(plain) as z:
        np.savez_compressed(packed, **{k: z[k] for k in z.files})
    remote = gcs.bucket("prompts-test") + "/ref/p.npz"
    storage.upload_file(plain, remote)
    train = _shards(tmp_path, np.zeros((4, 8)))
    local = prompts.load(_run(str(plain), train_uri=train))
    loaded = {uri: prompts.load(_run(uri, train_uri=train)) for uri in (str(packed), remote)}
    for p in loaded.values():
        np.testing.assert_array_equal(p.take(0, 40)[0], context.astype(np.float32))
        assert p.captions == local.captions
    assert loaded[remote].sha256 == local.sha256 != loaded[str(packed)].sha256


def test_the_text_encoder_weights_behind_the_embeddings_are_known_from_either_file(tmp_path):
    """What provenance records as textEncoderWeightsSha256: the prompts file's encoder hash (as
    `ladder prepare reference` writes it in meta), else the training manifest's; two different
    ones refused."""
    import json

    made, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64

    def npz(name, encoder):
        path = tmp_path / name
        meta = {"text_encoder": {"name": "t", "hash": encoder}} if encoder else {}
        np.savez(path, captions=np.array(["a", "b"]), context=np.ones((2, 4, 8), np.float32),
                 uncond=np.zeros((4, 8), np.float32), meta=np.array(json.dumps(meta)))
        return str(path)

    def load(prompts_uri, trained):
        run = _run(prompts_uri, train_uri=_shards(tmp_path, np.zeros((4, 8)), {"name": "t", "hash": trained}))
        run.data.text_encoder.name = "t"
        return prompts.load(run)

    assert load(npz("made.npz", made), None).text_encoder_sha256 == made
    assert load(npz("plain.npz", None), other).text_encoder_sha256 == other  # hand-made prompts
    assert load(npz("plain.npz", None), None).text_encoder_sha256 is None
    assert load(npz("made.npz", made), made).text_encoder_sha256 == made
    with pytest.raises(UserError, match=f"text-encoder weights {made} but data.trainUri .* with {other}"):
        load(npz("made.npz", made), other)
    assert prompts.load(_run("builtin:digits-test")).text_encoder_sha256 is None  # no weights


def test_workers_on_one_machine_copy_the_same_remote_prompts_at_once(tmp_path, gcs):
    """`ladder run -j`: several evaluator workers load one gs:// prompts file together; each gets
    the whole file, and no part file is left behind."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from ladder_api import storage

    plain = tmp_path / "p.npz"
    context = _big_prompts(plain, n=40, tokens=4, dim=8)
    remote = gcs.bucket("prompts-workers") + "/ref/p.npz"
    storage.upload_file(plain, remote)
    run = _run(remote, train_uri=_shards(tmp_path, np.zeros((4, 8))))
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: prompts.load(run), range(4)))
    for p in loaded:
        np.testing.assert_array_equal(p.take(0, 40)[0], context.astype(np.float32))
    assert len({p.sha256 for p in loaded}) == 1
    assert not list((Path(tempfile.gettempdir()) / "ladder-prompts").glob("*.part"))
