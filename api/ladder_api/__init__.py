"""Ladder's API: the one spec model every component shares.

The operator, the trainer and evaluator pods and the local runner all read the same pydantic
models from here, so a field means the same thing everywhere. This package imports no JAX,
torch or Kubernetes client (enforced by import-linter) so that every image can carry it.
"""

GROUP = "ladder.dev"
VERSION = "v1alpha1"
KIND = "ScalingExperiment"
PLURAL = "scalingexperiments"
SINGULAR = "scalingexperiment"
SHORT_NAMES = ["sx"]
API_VERSION = f"{GROUP}/{VERSION}"
