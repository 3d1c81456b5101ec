"""Names of everything an experiment creates: valid, short enough, and deterministic.

JobSet derives more names from its own: Jobs are `<jobset>-<replicatedJob>-<jobIndex>`, pods
`<job>-<podIndex>-<5 random>` with hostname `<jobset>-<replicatedJob>-<jobIndex>-<podIndex>`,
and the headless Service is the subdomain (the JobSet name). Its webhook rejects a JobSet whose
longest pod name would not be a DNS-1035 label of at most 63 characters, so JobSet names are
kept to JOBSET_NAME_MAX, which leaves room for `-slice-999-9999-abcde`. A name that would be too
long keeps its readable suffix (`-c768`, `-c768-eval`) and replaces the tail of the experiment
name with a hash of the whole experiment name, so two long names never collide and the same
experiment always gets the same names. The operator looks objects up by these functions, so
they are the only place a name is spelled.
"""

from __future__ import annotations

import hashlib

TRAIN_REPLICATED_JOB = "slice"  # xpk's name; pods are <jobset>-slice-<slice>-<host>
EVAL_REPLICATED_JOB = "eval"
PREPARE_REPLICATED_JOB = "prepare"  # pods are <jobset>-prepare-0-<worker>
PREPARE_CONTAINER = "prepare"
TRAIN_CONTAINER = "trainer"
EVAL_CONTAINER = "evaluator"

NAME_MAX = 63
JOBSET_NAME_MAX = NAME_MAX - len("-slice-999-9999-abcde")  # 42
HASH_LEN = 6


def fit(prefix: str, suffix: str = "", limit: int = NAME_MAX) -> str:
    """`prefix + suffix`, or, when longer than `limit`, a truncated prefix, a hash of the full
    prefix, then the suffix. Valid in, valid out: the prefix is a DNS-1035 label."""
    name = prefix + suffix
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:HASH_LEN]
    keep = limit - len(suffix) - HASH_LEN - 1
    if keep < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room in {limit} characters")
    head = prefix[:keep].rstrip("-")
    return f"{head}-{digest}{suffix}"


def training_jobset(experiment: str, width: int) -> str:
    return fit(experiment, f"-c{width}", JOBSET_NAME_MAX)


def evaluation_jobset(experiment: str, width: int) -> str:
    return fit(experiment, f"-c{width}-eval", JOBSET_NAME_MAX)


def prepare_jobset(experiment: str) -> str:
    return fit(experiment, "-prepare", JOBSET_NAME_MAX)


def run_config_map(experiment: str) -> str:
    return fit(experiment, "-runs")


def service_account(experiment: str) -> str:
    return fit(experiment, "-ladder-pods")


def status_role(experiment: str) -> str:
    """Name of both the Role and its RoleBinding."""
    return fit(experiment, "-ladder-status")


def run_config_key(run_name: str) -> str:
    """ConfigMap key (and file name under RUN_CONFIG_DIR) of one run's config."""
    return f"{run_name}.json"


RUN_CONFIG_DIR = "/etc/ladder/run"


def run_config_path(run_name: str) -> str:
    return f"{RUN_CONFIG_DIR}/{run_config_key(run_name)}"
