"""Training data: the on-disk latent shard format, its grain reader, and the bundled digits."""
