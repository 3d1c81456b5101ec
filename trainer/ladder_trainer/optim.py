"""AdamW with linear warm-up and the spec's decay, global-norm clipping (optax).

Warm-up reaches the peak at step `warmupSteps` and starts at peak/warmup (not 0), so the first
step is not wasted. After warm-up: constant, or cosine / linear decay to `endFactor x peak` at
`steps`.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax


def lr_schedule(training):
    """optax schedule (count -> learning rate) for run.training."""
    peak = float(training.learning_rate)
    warmup = int(training.lr_schedule.warmup_steps)
    total = int(training.steps)
    kind = training.lr_schedule.kind
    end = peak * float(training.lr_schedule.end_factor)

    def schedule(count):
        c = jnp.asarray(count, jnp.float32)
        warm = peak * jnp.minimum(1.0, (c + 1.0) / max(warmup, 1))
        frac = jnp.clip((c - warmup) / max(total - warmup, 1), 0.0, 1.0)
        if kind == "constant":
            decayed = jnp.full_like(c, peak)
        elif kind == "cosine":
            decayed = end + (peak - end) * 0.5 * (1.0 + jnp.cos(math.pi * frac))
        elif kind == "linear":
            decayed = peak + (end - peak) * frac
        else:
            raise ValueError(f"unknown lrSchedule.kind {kind!r}")
        return jnp.where(c < warmup, warm, decayed)

    return schedule


def make_optimizer(training) -> optax.GradientTransformation:
    opt = training.optimizer
    parts = []
    if opt.grad_clip_norm is not None:
        parts.append(optax.clip_by_global_norm(float(opt.grad_clip_norm)))
    parts.append(
        optax.adamw(
            lr_schedule(training), b1=opt.beta1, b2=opt.beta2, eps=opt.eps, weight_decay=opt.weight_decay
        )
    )
    return optax.chain(*parts)
