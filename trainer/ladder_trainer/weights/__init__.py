"""Weights in diffusers' layout for the ladder's autoencoder and U-Net.

A diffusers model folder is ``config.json`` + ``diffusion_pytorch_model.safetensors`` (what
``save_pretrained`` writes, e.g. ``stabilityai/sd-vae-ft-mse`` or SD v1.5's ``unet/``), on a local
path, file:// or gs://.

    config, params = load_autoencoder("gs://bucket/sd-vae-ft-mse")   # AutoencoderConfig, Flax params
    save_autoencoder(uri, config, params)                             # diffusers can load it back
    shape, params = load_unet("/weights/stable-diffusion-v1-5/unet")  # UNetShape, Flax params
    save_unet(uri, shape_or_model_config, params)

Any mismatch between a file and its config (missing, unexpected or mis-shaped tensors, a
non-safetensors file, an unsupported config option) is one ``ladder_api.errors.UserError`` that
names the file and every offending tensor. Modules: ``names`` (Flax path <-> diffusers key),
``convert`` (tensor layouts, checking), ``configs`` (config.json <-> ladder configs), ``files`` (I/O).
"""

from ladder_trainer.weights.loading import load_autoencoder, load_unet, save_autoencoder, save_unet

__all__ = ["load_autoencoder", "load_unet", "save_autoencoder", "save_unet"]
