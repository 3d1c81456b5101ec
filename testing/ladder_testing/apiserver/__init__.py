"""The local Kubernetes API server the operator tests run against (and its own tests)."""
