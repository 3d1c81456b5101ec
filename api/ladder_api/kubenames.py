"""The syntax Kubernetes (and the registries and GCP behind it) demand of the names a spec carries.

A name the API server refuses (a queue with a space, an upper-case priority class, an image with a
newline) must be refused at the spec, naming the field: rendered into a JobSet it is either
answered 422 on every create, or accepted and then fails every pod after TPU admission.

Each `*_problem` function returns None for a good value, else what is wrong in words. The
patterns are also put into the CRD (ladder_api.crd keeps `pattern`), so `kubectl apply` refuses
such a spec before the operator sees it; they are RE2-compatible for that reason.
"""

from __future__ import annotations

import re

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_MAX, SUBDOMAIN_MAX = 63, 253

# The image reference grammar of distribution/reference (what containerd and the kubelet parse):
# [domain[:port]/]path-component(/path-component)*[:tag][@algorithm:hex]
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}((\.|_|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"({_DOMAIN_COMPONENT}(\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = rf"(({_HOST}(:[0-9]+)?/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*)(:{_TAG})?(@{_DIGEST})?"
IMAGE_NAME_MAX = 255  # distribution/reference's NameTotalLengthMax (domain and path)

# A Google service account's e-mail: name@PROJECT.iam.gserviceaccount.com, or Google's own
# (PROJECT_NUMBER-compute@developer.gserviceaccount.com, PROJECT@appspot.gserviceaccount.com).
GCP_SERVICE_ACCOUNT = r"[a-z0-9][a-z0-9-]*[a-z0-9]@[a-z0-9][a-z0-9.:-]*[a-z0-9]\.gserviceaccount\.com"

PATTERNS = {
    "dns1123Label": f"^{DNS1123_LABEL}$",
    "dns1123Subdomain": f"^{DNS1123_SUBDOMAIN}$",
    "image": f"^{IMAGE_REFERENCE}$",
    "gcpServiceAccount": f"^{GCP_SERVICE_ACCOUNT}$",
}
# fullmatch: Python's `$` also matches before a final newline, Go's (the API server's) does not.
_FULL = {name: re.compile(p, re.ASCII) for name, p in PATTERNS.items()}


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def dns1123_label_problem(value: str, max_length: int = LABEL_MAX) -> str | None:
    if len(value) > max_length or not _FULL["dns1123Label"].fullmatch(value):
        return (f"{_shown(value)} is not a DNS-1123 label: lower-case letters, digits and '-', starting "
                f"and ending with a letter or digit, at most {max_length} characters")
    return None


def dns1123_subdomain_problem(value: str, max_length: int = SUBDOMAIN_MAX) -> str | None:
    """An object name (ServiceAccount, LocalQueue, WorkloadPriorityClass, ...). Names that are also
    label values (Kueue's queue and priority labels) pass max_length 63."""
    if len(value) > max_length or not _FULL["dns1123Subdomain"].fullmatch(value):
        return (f"{_shown(value)} is not a valid Kubernetes object name: lower-case letters, digits, '-' "
                f"and '.', starting and ending with a letter or digit, at most {max_length} characters")
    return None


def image_problem(value: str) -> str | None:
    match = _FULL["image"].fullmatch(value)
    if not match:
        return (f"{_shown(value)} is not an image reference: [registry[:port]/]path[:tag][@sha256:digest], "
                "the path in lower case, no spaces or line breaks")
    if len(match.group(1)) > IMAGE_NAME_MAX:
        return f"the repository of {_shown(value)} is longer than {IMAGE_NAME_MAX} characters"
    return None


def gcp_service_account_problem(value: str) -> str | None:
    if len(value) > 254 or not _FULL["gcpServiceAccount"].fullmatch(value):
        return (f"{_shown(value)} is not a Google service account e-mail "
                "(NAME@PROJECT.iam.gserviceaccount.com)")
    return None


def image_repository(reference: str) -> str:
    """The fully qualified repository of an image reference, as the registry sees it:
    `busybox:1` is docker.io/library/busybox, `ghcr.io/a/b:1@sha256:...` is ghcr.io/a/b.
    (The first component is a registry when it holds '.' or ':', is localhost or has upper case.)"""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first, _, rest = name.partition("/")
    if not rest or (not any(c in first for c in ".:") and first != "localhost" and first == first.lower()):
        domain, path = "docker.io", name
    else:
        domain, path = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return f"{domain}/{path}"
