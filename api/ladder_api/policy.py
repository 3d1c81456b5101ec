"""The site's allowlists: which image repositories, storage prefixes and Google service accounts the
experiments of one cluster may use.

Whoever may create a ScalingExperiment otherwise chooses what the operator runs (any image), as
whom (any Google service account its namespace can impersonate) and, with `retention: delete`,
under which bucket prefix the operator's own identity deletes objects. The cluster's
administrator sets the lists in the Helm chart (`policy.*`); the operator refuses an experiment
that leaves them, naming the field and the list. An empty list allows everything (the default,
as before the lists existed).

Matching is by whole path segments: `ghcr.io/ladder-dev/` allows `ghcr.io/ladder-dev/trainer` but
not `ghcr.io/ladder-dev-fork/trainer`; `gs://bucket/team` allows `gs://bucket/team/x` but not
`gs://bucket/team2`. Images are compared by the repository the registry sees (`busybox` is
`docker.io/library/busybox`); a URI with `.` or `..` segments never matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ladder_api.kubenames import image_repository

KEYS = {
    "allowedImageRepositories": "image_repositories",
    "allowedStoragePrefixes": "storage_prefixes",
    "allowedGcpServiceAccounts": "gcp_service_accounts",
}


@dataclass(frozen=True)
class Policy:
    image_repositories: tuple[str, ...] = ()
    storage_prefixes: tuple[str, ...] = ()
    gcp_service_accounts: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict | None) -> Policy:
        """From the chart's `policy` values (camelCase keys, lists of strings)."""
        data = data or {}
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown policy keys {unknown}; known: {', '.join(KEYS)}")
        out = {}
        for key, attr in KEYS.items():
            values = data.get(key) or []
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise ValueError(f"policy.{key} must be a list of non-empty strings")
            out[attr] = tuple(values)
        bad = [p for p in out["storage_prefixes"] if not p.startswith("gs://")]
        if bad:
            raise ValueError(f"policy.allowedStoragePrefixes must be gs:// prefixes; got {bad}")
        return cls(**out)


def _under(value: str, prefixes: Iterable[str]) -> bool:
    for prefix in prefixes:
        prefix = prefix.rstrip("/")
        if value.rstrip("/") == prefix or value.startswith(prefix + "/"):
            return True
    return False


def _listed_repository(entry: str) -> str:
    """An allowlist entry as a repository: `busybox` as the image would be, but an entry ending in
    '/' is a namespace (`docker.io/team/` is not docker.io/library/team)."""
    if not entry.endswith("/"):
        return image_repository(entry)
    return image_repository(entry.rstrip("/") + "/x")[: -len("/x")]


def image_allowed(reference: str, repositories: tuple[str, ...]) -> bool:
    if not repositories:
        return True
    return _under(image_repository(reference), [_listed_repository(r) for r in repositories])


def uri_allowed(uri: str, prefixes: tuple[str, ...]) -> bool:
    if not prefixes:
        return True
    path = uri.split("://", 1)[-1]
    if any(part in (".", "..") for part in path.split("/")):
        return False
    return _under(uri, prefixes)


def account_allowed(account: str | None, accounts: tuple[str, ...]) -> bool:
    return not accounts or account is None or account in accounts


def violations(images: dict[str, str], uris: dict[str, str], account: tuple[str, str | None],
               policy: Policy) -> list[tuple[str, str]]:
    """(field, message) for each value outside its list. `images` and `uris` map field paths to
    values (only gs:// URIs are storage); `account` is (field, Google service account or None)."""
    out = []
    for field, ref in images.items():
        if not image_allowed(ref, policy.image_repositories):
            out.append((field, f"{ref} (repository {image_repository(ref)}) is not in this cluster's "
                               f"allowed image repositories ({', '.join(policy.image_repositories)}); "
                               "use one of them or ask the cluster's administrator"))
    for field, uri in uris.items():
        if uri.startswith("gs://") and not uri_allowed(uri, policy.storage_prefixes):
            out.append((field, f"{uri} is outside this cluster's allowed storage prefixes "
                               f"({', '.join(policy.storage_prefixes)}); use one of them or ask the "
                               "cluster's administrator"))
    field, value = account
    if not account_allowed(value, policy.gcp_service_accounts):
        out.append((field, f"{value} is not one of this cluster's allowed Google service accounts "
                           f"({', '.join(policy.gcp_service_accounts)})"))
    return out
