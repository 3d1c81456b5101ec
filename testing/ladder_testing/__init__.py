"""Test infrastructure shared by tests/ and bench/: the local Kubernetes API server that stands in
for kube-apiserver on machines where none can run (and that `kubectl` can be pointed at), and the
GCS emulator with every client pointed at it (`gcs`)."""
