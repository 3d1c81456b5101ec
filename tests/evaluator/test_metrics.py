"""Metrics: FID through clean-fid's path (in memory == clean-fid's compute_fid on folders), the
digits classifier (features, adherence, cache), reference statistics checks, CLIP score on a tiny
random open_clip model and the Inception loader's errors (the real network: test_inception)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ladder_api.errors import UserError
from ladder_evaluator.metrics import clip_score, digits_classifier, fid
from ladder_evaluator.metrics.images import to_uint8_rgb
from ladder_trainer.data import digits
from tests.evaluator.standins import tiny_clip


@pytest.fixture(scope="module")
def splits():
    return digits.load("train"), digits.load("test")


def test_in_memory_fid_equals_clean_fid_compute_fid_on_folders(tmp_path, splits, digits_extractor):
    from cleanfid import fid as cleanfid_fid

    train, test = splits
    a, b = train.images[:120], test.images[:100]
    for name, imgs in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        for i, im in enumerate(to_uint8_rgb(imgs)):
            Image.fromarray(im).save(tmp_path / name / f"{i:04d}.png")
    ref = fid.reference_from_images(b, digits_extractor)
    ours = fid.fid(a, ref, digits_extractor, batch_size=32)
    theirs = cleanfid_fid.compute_fid(
        str(tmp_path / "a"), str(tmp_path / "b"), mode="clean", custom_feat_extractor=digits_extractor.model,
        custom_fn_resize=digits_extractor.fn_resize, num_workers=0, batch_size=32, device=torch.device("cpu"),
        verbose=False,
    )
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-8)


def test_digits_fid_separates_real_digits_from_noise(splits, digits_extractor):
    train, test = splits
    ref = fid.reference_from_images(test.images, digits_extractor)
    real = fid.fid(train.images, ref, digits_extractor)
    noise = np.random.default_rng(0).uniform(-1, 1, test.images.shape).astype(np.float32)
    assert real < 2.0 < 10 * real < fid.fid(noise, ref, digits_extractor)
    assert fid.fid(test.images, ref, digits_extractor) == pytest.approx(0.0, abs=1e-4)


def test_adherence_and_the_cached_classifier(splits, classifier_cache, digits_extractor):
    _, test = splits
    assert digits_classifier.adherence(test.images, test.labels, digits_extractor) > 0.93
    wrong = (test.labels + 1) % 10
    assert digits_classifier.adherence(test.images, wrong, digits_extractor) < 0.1
    cached = list(Path(classifier_cache).glob("digits-classifier-*.npz"))
    assert len(cached) == 1
    again = digits_classifier.load_or_train(classifier_cache)  # read back, identical
    np.testing.assert_array_equal(again.w0, digits_extractor.model.w0.numpy())


def test_digits_classifier_training_is_deterministic(digits_extractor):
    """A second training gives the weights the session's first training (the fixture's) gave, with
    BLAS allowed one thread around it instead of all: the weights do not depend on the machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        again = digits_classifier.train()
    np.testing.assert_array_equal(again.w0, digits_extractor.model.w0.numpy())
    np.testing.assert_array_equal(again.w1, digits_extractor.model.w1.numpy())


def test_evaluations_sharing_a_cache_train_the_classifier_once(tmp_path, monkeypatch):
    """While one evaluation trains, another asking for the same cache waits on its lock and then
    loads what the first wrote (a stand-in training that finishes only once the second waits)."""
    trained, second_waits = threading.Event(), threading.Event()
    calls = []
    real_flock = digits_classifier.fcntl.flock

    def flock(fd, op):
        if threading.current_thread().name == "second":
            second_waits.set()
        return real_flock(fd, op)

    def train():
        calls.append(threading.current_thread().name)
        trained.set()
        assert second_waits.wait(60), "the second evaluation never reached the lock"
        rng = np.random.default_rng(0)
        return digits_classifier.Weights(*(rng.random(n).astype(np.float32) for n in (4, 2, 4, 2)))

    monkeypatch.setattr(digits_classifier.fcntl, "flock", flock)
    monkeypatch.setattr(digits_classifier, "train", train)
    got = {}

    def evaluation():
        got[threading.current_thread().name] = digits_classifier.load_or_train(tmp_path)

    first = threading.Thread(target=evaluation, name="first")
    first.start()
    assert trained.wait(60)
    second = threading.Thread(target=evaluation, name="second")
    second.start()
    first.join(60)
    second.join(60)
    assert calls == ["first"]
    np.testing.assert_array_equal(got["first"].w0, got["second"].w0)


def test_reference_stats_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(8), np.eye(8)
    fid.save_stats(tmp_path / "ref.npz", mu, sigma)
    got_mu, got_sigma = fid.load_stats(str(tmp_path / "ref.npz"), 8)
    np.testing.assert_array_equal(got_mu, mu)
    with pytest.raises(UserError, match=r"2048-dimensional.*fidFeatures"):
        fid.load_stats(str(tmp_path / "ref.npz"), 2048)
    with pytest.raises(UserError, match="statsUri"):
        fid.load_stats(str(tmp_path / "missing.npz"), 8)
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(UserError, match="clean-fid stats"):
        fid.load_stats(str(tmp_path / "junk.npz"), 8)


class _OtherNet(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def test_inception_loader_names_missing_or_unknown_weights(tmp_path):
    with pytest.raises(UserError, match=r"inception-2015-12-05\.pt.*inceptionWeightsUri|inceptionWeightsUri"):
        fid.inception_extractor(str(tmp_path / "inception-2015-12-05.pt"))
    torch.jit.script(_OtherNet()).save(str(tmp_path / "inception-2015-12-05.pt"))
    with pytest.raises(UserError, match=r"have sha256 [0-9a-f]{64}, expected [0-9a-f]{64}"):
        fid.inception_extractor(str(tmp_path / "inception-2015-12-05.pt"), torch.device("cpu"))


def test_clip_score_runs_open_clip_from_a_weights_path(tmp_path, splits):
    with pytest.raises(UserError, match="clipWeightsUri"):
        clip_score.load(str(tmp_path / "nope.safetensors"))
    _, weights = tiny_clip(tmp_path)
    scorer = clip_score.load(str(weights), torch.device("cpu"))
    imgs, caps = splits[1].images[:4], splits[1].captions[:4]
    s1 = scorer.score(imgs, caps, batch_size=3)
    assert -1.0 <= s1 <= 1.0
    assert scorer.score(imgs, caps) == pytest.approx(s1, abs=1e-6)  # batching does not matter
    assert scorer.score(imgs, ["a photo of a cat"] * 4) != pytest.approx(s1, abs=1e-6)
