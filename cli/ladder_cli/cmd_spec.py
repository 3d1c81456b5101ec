"""`ladder validate | render | plan | crd`: the spec-side commands. No cluster needed.

Every user mistake (missing file, bad YAML, unknown field, bad value) is raised as SpecError and
printed by ladder_cli.main as one line per problem, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ladder_api import grid
from ladder_api.crd import crd_yaml
from ladder_api.errors import SpecError, UserError
from ladder_api.estimate import estimate
from ladder_api.limits import CONFIG_MAP_LIMIT, MAX_MEASUREMENTS
from ladder_api.loading import load_experiment
from ladder_api.plan import Plan, expand
from ladder_api.validation import Target, problems
from ladder_cli import estimate_view
from ladder_operator import render as rendering
from ladder_operator.limits import config_map_bytes, object_problems


def register(sub) -> None:
    """Add this area's subcommands to the `ladder` parser."""
    p = sub.add_parser(
        "validate",
        help="check an experiment file; one line per problem",
        description="Validate a ScalingExperiment file and print a summary of its sizes and slices and "
        "the size of its evaluation grid (measurements per size and in all, result objects, the run "
        "ConfigMap against its 1 MiB); refuses grids past the limits of ladder_api.limits. What only a "
        "cluster refuses (outputs or data off gs://, a batch the slice's chips do not divide) is printed "
        "as a warning: `ladder run` can execute it, the operator sets it Invalid.",
    )
    p.add_argument("file", help="experiment YAML")
    p.add_argument(
        "--cluster",
        action="store_true",
        help="check it as the operator does (exit 2 on what only a cluster refuses, too)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "render",
        help="print the Kubernetes objects an experiment becomes",
        description="Print the objects the operator creates for an experiment as multi-document YAML "
        "(ServiceAccount, Role, RoleBinding, run ConfigMap, then per size the training and the "
        "evaluation JobSet). The operator creates an evaluation JobSet only after its training "
        "JobSet succeeded. Byte-identical on every run.",
    )
    p.add_argument("file", help="experiment YAML")
    p.add_argument("--size", type=int, metavar="C", help="only the shared objects and this width's JobSets")
    p.add_argument("--uid", help="experiment uid for ownerReferences (omitted when not given)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "plan",
        help="write each run's resolved config as JSON, or estimate the study's cost",
        description="Expand an experiment into one resolved run config per size: the exact JSON the "
        "trainer and evaluator read (--config). Without -o, print it. With --estimate, print instead "
        "what the study costs per size and in all: training and evaluation FLOPs, chip-hours and "
        "wall-clock hours on their slices, checkpoint and data storage, and money at a price.",
    )
    p.add_argument("file", help="experiment YAML")
    p.add_argument("--size", type=int, metavar="C", help="only this width")
    p.add_argument("-o", "--output-dir", metavar="DIR", help="write DIR/<run-name>.json per run")
    p.add_argument("--output-uri", metavar="URI", help="override spec.storage.outputUri")
    estimate_view.add_flags(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "crd",
        help="print the ScalingExperiment CRD",
        description="Print the CustomResourceDefinition generated from the spec and status models.",
    )
    p.set_defaults(func=cmd_crd)


def _plan(path: str, output_uri: str | None = None, uid: str | None = None) -> Plan:
    exp = load_experiment(path)
    if uid:
        exp.metadata.uid = uid
    return expand(exp, output_uri=output_uri)


def _check_size(plan: Plan, size: int | None, source: str) -> None:
    if size is not None and size not in [r.width for r in plan.runs]:
        widths = ", ".join(str(r.width) for r in plan.runs)
        raise SpecError(source, [f"--size {size}: not one of spec.ladder.widths ({widths})"])


def summary_line(plan: Plan) -> str:
    """One line: name, sizes, and which slices they train on."""
    groups: dict[str, list[int]] = {}
    for run in plan.runs:
        s = run.slice
        key = s.slice_type if s.num_slices == 1 else f"{s.num_slices}x {s.slice_type}"
        groups.setdefault(key, []).append(run.width)
    slices = "; ".join(f"{k} for {', '.join(f'c{w}' for w in v)}" for k, v in groups.items())
    widths = " ".join(f"c{r.width}" for r in plan.runs)
    eval_slice = plan.runs[0].eval_slice.slice_type
    ref = plan.experiment
    return (
        f"OK {ref.namespace}/{ref.name}: {len(plan.runs)} sizes ({widths}); "
        f"training slices: {slices}; evaluation: {eval_slice}"
    )


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


def grid_line(plan: Plan) -> str:
    """How big the evaluation is: measurements per size and in all, and the objects they make
    (ladder_api.grid: evaluation.budgets add steps that depend on each size's cost)."""
    ev = plan.runs[0].evaluation
    ckpts = grid.checkpoint_count(ev, plan.runs[0].training)
    points = [len(grid.run_grid_points(run)) for run in plan.runs]
    per_size = [grid.expected_count(run) for run in plan.runs]
    settings, measured = _span(points), _span(per_size)
    return (
        f"grid: {ckpts} checkpoint{'s' if ckpts != 1 else ''} x {settings} sampling settings x "
        f"{len(ev.metrics)} metrics = {measured} measurements per size, {sum(per_size):,} in all "
        f"(of at most {MAX_MEASUREMENTS:,}), {ckpts * sum(points):,} result objects; "
        f"run ConfigMap {config_map_bytes(plan) / 1024:.0f} KiB of {CONFIG_MAP_LIMIT // 1024} KiB"
    )


def cmd_validate(args: argparse.Namespace) -> int:
    """Schema first (with the grid's limits, ladder_api.limits), then ladder_api.validation, the
    operator's own checks: the per-chip memory plan always, and what can only fail in a pod as a
    warning (an error with --cluster); then whether the objects it becomes fit the API server."""
    exp = load_experiment(args.file)
    plan = expand(exp)
    found = problems(exp, Target.cluster)
    errors = [str(p) for p in found if args.cluster or not p.cluster_only] + prompt_count_problems(exp)
    errors += [f"spec.{p}" for p in object_problems(plan)]
    if errors:
        raise SpecError(args.file, errors)
    for p in found:
        print(f"{args.file}: warning: {p} [on a cluster only: the operator sets it Invalid]", file=sys.stderr)
    print(summary_line(plan))
    print(f"   {grid_line(plan)}")
    print(estimate_view.summary_line(estimate(plan)))
    return 0


def prompt_count_problems(exp) -> list[str]:
    """What the evaluator (ladder_evaluator.prompts) would refuse of a local prompts .npz, found
    after training otherwise: fewer prompts than evaluation.numSamples, an unconditional embedding
    not ladder.contextTokens x ladder.contextDim, another text encoder than data.textEncoder, and
    no digit labels when metrics include adherence. Only the small arrays are read (captions,
    uncond, labels' presence, meta); a set on gs:// is checked by the evaluator before it samples,
    as reading 30K embeddings here would cost gigabytes."""
    import numpy as np

    spec = exp.spec
    uri, n = spec.data.reference_set.uri, spec.evaluation.num_samples
    path = Path(uri.removeprefix("file://"))
    if uri.startswith(("gs://", "builtin:")) or path.suffix != ".npz" or not path.is_file():
        return []
    field = "spec.data.referenceSet.uri"
    try:
        with np.load(path, allow_pickle=False) as z:
            count, uncond = len(z["captions"]), z["uncond"].shape
            labelled, meta = "labels" in z.files, json.loads(str(z["meta"])) if "meta" in z.files else {}
    except (KeyError, ValueError, OSError) as err:
        return [f"{field}: {uri} is not a prompts .npz with captions and uncond ({err})"]
    out = []
    if count < n:
        out.append(f"{field}: {uri} holds {count} prompts but evaluation.numSamples is {n}: each sample "
                   f"needs its own prompt (prepare at least {n}, or lower numSamples)")
    tokens, dim = spec.ladder.context_tokens, spec.ladder.context_dim
    if tuple(uncond) != (tokens, dim):
        out.append(f"{field}: {uri} has an unconditional embedding of shape {tuple(uncond)}, but "
                   f"ladder.contextTokens x ladder.contextDim is ({tokens}, {dim}): prepare the prompts "
                   "with this experiment's text encoder")
    made, enc = (meta.get("text_encoder") if isinstance(meta, dict) else None), spec.data.text_encoder
    if isinstance(made, dict) and (made.get("name") != enc.name
                                   or (enc.hash is not None and made.get("hash") != enc.hash)):
        out.append(f"{field}: {uri} was embedded with {made.get('name')} {made.get('hash') or ''} but "
                   f"data.textEncoder is {enc.name} {enc.hash or ''}: prepare them again with this "
                   "experiment's encoder (ladder prepare reference)")
    if "adherence" in [str(m) for m in spec.evaluation.metrics] and not labelled:
        out.append(f"spec.evaluation.metrics: adherence needs prompts with known digits, and {uri} has no "
                   "labels: use data.referenceSet.uri builtin:digits-test, or drop adherence")
    return out


def cmd_render(args: argparse.Namespace) -> int:
    plan = _plan(args.file, uid=args.uid)
    _check_size(plan, args.size, args.file)
    if args.size is None:
        manifests = rendering.render(plan)
    else:
        manifests = rendering.render_shared(plan) + rendering.render_size(plan, args.size)
    sys.stdout.write(rendering.dump_yaml(manifests))
    return 0


def cmd_estimate(args: argparse.Namespace, plan: Plan, runs) -> int:
    if args.output_dir is not None:
        raise UserError("-o/--output-dir writes run configs; --estimate prints the cost: use one of them")
    study = estimate(plan.model_copy(update={"runs": runs}), estimate_view.assumptions(args))
    if args.json:
        print(json.dumps(estimate_view.to_json(study), indent=2))
        return 0
    ref = plan.experiment
    estimate_view.print_table(study, f"{ref.namespace}/{ref.name}: estimated cost")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    if misused := estimate_view.misused_flags(args):
        raise UserError(f"{', '.join(misused)}: only with --estimate (the cost estimate's assumptions)")
    plan = _plan(args.file, output_uri=args.output_uri)
    _check_size(plan, args.size, args.file)
    runs = [r for r in plan.runs if args.size is None or r.width == args.size]
    if args.estimate:
        return cmd_estimate(args, plan, runs)
    if args.output_dir is None:
        docs = [json.loads(r.config_json()) for r in runs]
        out = docs[0] if args.size is not None else docs
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    out_dir = Path(args.output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for run in runs:
            path = out_dir / f"{run.name}.json"
            path.write_text(run.config_json() + "\n")
            print(path)
    except OSError as err:
        raise SpecError(str(out_dir), [f"cannot write run configs ({err.strerror or err})"]) from None
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(crd_yaml())
    return 0
