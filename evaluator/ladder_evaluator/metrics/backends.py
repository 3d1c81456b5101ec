"""Which implementation computes a metric's features: `jax` (on the evaluator's accelerators,
next to the sampler) or `torch` (the reference implementations the JAX ports are tested against).

The default is JAX wherever a port with a parity test exists: Inception FID features
(inception_jax) and CLIP score (clip_jax, for the open_clip models the port can express; other
CLIP models fall back to torch, with a log line saying why). The digits classifier stays torch.
Every Result records the backend that computed it in settings["metricsBackend"].
"""

from __future__ import annotations

import logging

from ladder_api.errors import UserError
from ladder_api.spec import FidFeatures

log = logging.getLogger(__name__)

JAX, TORCH = "jax", "torch"
BACKENDS = (JAX, TORCH)
DEFAULT = JAX


def _check(backend: str | None) -> str | None:
    if backend is not None and backend not in BACKENDS:
        raise UserError(f"metrics backend {backend!r}: use one of {', '.join(BACKENDS)}")
    return backend


def fid_extractor(features: FidFeatures | str, backend: str | None = None, *, weights_uri: str | None = None,
                  cache_dir=None, batch_size: int = 64):
    """FID feature extractor (fid.FeatureExtractor interface; `.backend` says which one).
    backend None: the default (JAX for Inception, torch for the digits classifier)."""
    backend = _check(backend)
    if FidFeatures(features) is FidFeatures.inception:
        if (backend or DEFAULT) == JAX:
            from ladder_evaluator.metrics import inception_jax

            return inception_jax.extractor(weights_uri, batch_size)
        from ladder_evaluator.metrics import fid

        return fid.inception_extractor(weights_uri)
    if backend == JAX:
        raise UserError("fidFeatures digits-classifier has no JAX implementation: use the torch backend")
    from ladder_evaluator.metrics import digits_classifier

    return digits_classifier.extractor(cache_dir)


def clip_scorer(weights_uri: str | None, backend: str | None = None, *, batch_size: int = 64,
                model_name: str | None = None):
    """CLIP scorer (`.score(images, captions, batch_size)`, `.backend`). backend None: JAX if the
    port expresses the model and its preprocessing exactly, else torch."""
    from ladder_evaluator.metrics import clip_score
    from ladder_evaluator.metrics.clip_jax import NotPortedError

    model_name = model_name or clip_score.DEFAULT_MODEL
    if (_check(backend) or DEFAULT) == TORCH:
        return clip_score.load(weights_uri, model_name=model_name)
    try:
        return clip_score.load_jax(weights_uri, batch_size, model_name=model_name)
    except NotPortedError as err:
        if backend == JAX:
            raise UserError(f"CLIP weights at {weights_uri} (evaluation.clipWeightsUri): the JAX "
                            f"backend cannot run this model ({err}); use the torch backend") from None
        log.warning("CLIP score in torch: the JAX port does not express this model (%s)", err)
        return clip_score.load(weights_uri, model_name=model_name)
