"""Metrics: FID (clean-fid's path, on Inception or digits-classifier features), CLIP score and
prompt adherence. The names results are recorded under are ladder_api.grid's.

torch, clean-fid and open_clip are imported only inside the modules that need them.
"""
