"""`ladder prepare`: turn images and captions into what the trainer and the evaluator read.

- ``text_image``: a training set (ladder-latents/v2) of autoencoder latents and text embeddings,
  sharded over N workers that each commit their own parts; a manifest is written last.
- ``reference``: the evaluator's prompts file and the reference set's FID statistics.
- ``train_autoencoder``: a small AutoencoderKL trained on the images, saved as diffusers saves one.
- ``convert``: a ladder-latents/v1 set rewritten as v2.

Imports ladder_api and ladder_trainer (models, weights, the data format); torch only inside the
text encoders. The trainer never imports this package.
"""
