"""`ladder prepare train-autoencoder`: a small AutoencoderKL of SD's architecture, trained here.

Where SD's VAE weights cannot be had (offline machines, tests, the demo), the latent path still
runs end to end with an autoencoder of the same architecture and a smaller width, trained on the
study's own images: loss = mean |x - x'| + mean (x - x')^2 + klWeight * KL(q(z|x) || N(0, I)) per
latent element, x' decoded from a posterior sample (SD's recipe without its perceptual and GAN
terms). Adam, a seeded shuffle each epoch, one jitted step. The scaling factor is then set as SD
set 0.18215: 1 / the standard deviation of the posterior means over the images, so the U-Net sees
latents of unit spread. Saved with ``save_autoencoder`` in diffusers' layout and loaded back by
``load_autoencoder`` exactly as sd-vae-ft-mse is.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ladder_api.errors import UserError
from ladder_prepare.images import to_model_space


@dataclass(frozen=True)
class Recipe:
    widths: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    norm_groups: int = 8
    steps: int = 500
    batch_size: int = 16
    learning_rate: float = 1e-3
    kl_weight: float = 1e-4
    seed: int = 0

    def config(self, latent_channels: int, in_channels: int):
        from ladder_trainer.models.autoencoder import AutoencoderConfig

        bad = [w for w in self.widths if w % self.norm_groups]
        if bad:
            raise UserError(
                f"--widths {list(self.widths)}: {bad} not divisible by --norm-groups {self.norm_groups}"
            )
        return AutoencoderConfig(
            block_out_channels=tuple(self.widths),
            layers_per_block=self.layers_per_block,
            latent_channels=latent_channels,
            norm_num_groups=self.norm_groups,
            in_channels=in_channels,
            out_channels=in_channels,
            scaling_factor=1.0,
        )


def loss_fn(model, kl_weight: float):
    import jax.numpy as jnp

    def loss(params, x, rng):
        recon, posterior = model.apply({"params": params}, x, rng)
        err = recon - x
        rec = jnp.mean(jnp.abs(err)) + jnp.mean(err**2)
        kl = jnp.mean(posterior.kl()) / np.prod(posterior.mean.shape[1:])
        return rec + kl_weight * kl, (rec, kl)

    return loss


@functools.lru_cache(maxsize=8)
def _step(config, learning_rate: float, kl_weight: float):
    """The jitted Adam step, one per (config, recipe): repeated trainings compile once."""
    import jax
    import optax

    from ladder_trainer.models.autoencoder import build_autoencoder

    tx = optax.adam(learning_rate)
    grad = jax.value_and_grad(loss_fn(build_autoencoder(config), kl_weight), has_aux=True)

    @jax.jit
    def step(params, opt, x, rng):
        (value, _), g = grad(params, x, rng)
        updates, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, updates), opt, value

    return tx, step


def train(
    images_u8: np.ndarray, config, recipe: Recipe, progress: Callable[[int, float], None] = lambda s, v: None
):
    """(params, per-step losses) after recipe.steps Adam steps on the images ([n, S, S, C] uint8)."""
    import jax

    from ladder_trainer.models.autoencoder import init_params

    if len(images_u8) < 2:
        raise UserError(f"train-autoencoder needs images; the source gave {len(images_u8)}")
    tx, step = _step(config, recipe.learning_rate, recipe.kl_weight)
    params = init_params(config, recipe.seed)
    opt = tx.init(params)
    data = to_model_space(images_u8)
    rng, key = np.random.default_rng(recipe.seed), jax.random.key(recipe.seed)
    order, pos, losses = rng.permutation(len(data)), 0, []
    batch = min(recipe.batch_size, len(data))
    for s in range(recipe.steps):
        if pos + batch > len(order):
            order, pos = rng.permutation(len(data)), 0
        x = data[order[pos : pos + batch]]
        pos += batch
        params, opt, value = step(params, opt, x, jax.random.fold_in(key, s))
        losses.append(float(value))
        progress(s + 1, losses[-1])
    return params, np.array(losses)


def scaling_factor(config, params, images_u8: np.ndarray, batch: int = 64) -> float:
    """1 / std of the posterior means (SD's way to get 0.18215), over up to 1024 images."""
    from ladder_trainer.models.autoencoder import codec

    means = []
    posterior = codec(config).posterior
    for start in range(0, min(len(images_u8), 1024), batch):
        means.append(np.asarray(posterior(params, to_model_space(images_u8[start : start + batch])).mean))
    return float(1.0 / np.std(np.concatenate(means)))


def reconstruction_error(config, params, images_u8: np.ndarray) -> float:
    """Mean |x - decode(encode(x))| in model space over the images (posterior means)."""
    from ladder_trainer.models.autoencoder import codec

    c = codec(config)
    x = to_model_space(images_u8)
    return float(np.mean(np.abs(np.asarray(c.decode(params, c.encode(params, x))) - x)))


def save(uri: str, config, params, images_u8: np.ndarray):
    """Set the scaling factor, save in diffusers' layout; returns the saved config."""
    from ladder_trainer.weights import save_autoencoder

    config = dataclasses.replace(config, scaling_factor=round(scaling_factor(config, params, images_u8), 5))
    save_autoencoder(uri, config, params)
    return config


def collect_images(source, size: int, channels: int, limit: int | None = None) -> tuple[np.ndarray, int]:
    """(uint8 images [n, size, size, channels] of the source's items, items skipped)."""
    from ladder_prepare.text_image import decoded

    out, skipped = [], 0
    for k in range(source.num_parts()):
        for _, img in decoded(source.items(k), size, channels, threads=4):
            if isinstance(img, str):
                skipped += 1
                continue
            out.append(img)
            if limit is not None and len(out) >= limit:
                return np.stack(out), skipped
    return (np.stack(out) if out else np.zeros((0, size, size, channels), np.uint8)), skipped
