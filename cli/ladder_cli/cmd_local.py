"""`ladder run`, `ladder status`, `ladder report`: the one-machine backend and its report, and the
same status and report of an experiment on a cluster (--experiment, through the kubeconfig; see
cluster_experiment) or of any experiment's storage root (local or gs://).

The report (ladder_report, matplotlib) is imported only inside the commands that need it, so
`ladder validate` and `ladder status` never load matplotlib, JAX or torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ladder_api.errors import SpecError, UserError


def register(sub) -> None:
    """Add this area's subcommands to the `ladder` parser."""
    p = sub.add_parser(
        "run",
        help="run an experiment on this machine (train, evaluate, report)",
        description="Execute the experiment's plan here: each size's trainer and evaluator as "
        "subprocesses. Ctrl-C stops cleanly; running the same command again resumes.",
    )
    p.add_argument("file", help="ScalingExperiment YAML file")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="run directory, or a gs:// URI for the outputs (default: spec.local.outputDir, "
                   "else <spec.storage.outputUri>/<name> when the spec sets it, else ./ladder-runs/<name>)")
    p.add_argument("-j", "--parallel", type=int, metavar="N",
                   help="processes at once, training and evaluation workers alike (default: "
                   "spec.local.maxParallel); a size evaluates with evaluation.workers processes")
    p.add_argument("--force-eval", action="store_true",
                   help="evaluate every size again even where its measurements are recorded")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--plain", action="store_true", help="plain progress lines instead of the live table")
    p.add_argument("--python", metavar="PATH", default=sys.executable,
                   help="interpreter that runs the trainer and evaluator (default: the one running ladder)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="print an experiment's status like `kubectl get sx`")
    p.add_argument("dir", nargs="?",
                   help="run directory written by `ladder run` (the one it printed as its state)")
    _cluster_args(p)
    p.add_argument("--json", action="store_true", help="print the status (the resource's status shape)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="write report.md and report.html for an experiment")
    p.add_argument("dir", nargs="?", metavar="DIR|URI",
                   help="run directory written by `ladder run`, or an experiment's storage root "
                   "(<storage.outputUri>/<name>, local or gs://)")
    _cluster_args(p)
    p.add_argument("-o", "--output", metavar="DIR",
                   help="where report.md and report.html go (default: the directory itself; for gs:// "
                   "and --experiment, ./ladder-reports/<name>)")
    p.set_defaults(func=cmd_report)


def _cluster_args(p) -> None:
    p.add_argument("--experiment", metavar="NAME",
                   help="a ScalingExperiment on the cluster of the kubeconfig (instead of DIR)")
    p.add_argument("-n", "--namespace", help="its namespace (default: the kubeconfig context's)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")


def _source(args: argparse.Namespace) -> None:
    if bool(args.dir) == bool(args.experiment):
        what = "a directory or URI" if args.command == "report" else "a directory"
        raise UserError(f"ladder {args.command}: give {what} or --experiment NAME (one of them)")


def _cluster(args: argparse.Namespace):
    from ladder_cli.cluster_experiment import fetch

    return fetch(args.experiment, args.namespace, args.kubeconfig, args.context)


def _write_report(out_dir: Path) -> Path:
    from ladder_report import write_report  # lazy: matplotlib

    return write_report(out_dir).html


def where_lines(loc) -> list[str]:
    """`ladder run`'s first lines after the title: where the outputs go and which setting said so."""
    if not loc.remote:
        lines = [f"  outputs and runner state: {loc.outputs} (from {loc.chosen_by})"]
    else:
        lines = [f"  outputs (checkpoints, metrics, results, samples): {loc.outputs} (from {loc.chosen_by})",
                 f"  runner state (status.json, configs, logs; `ladder status DIR`): {loc.state_dir}"]
    if loc.ignored:
        lines.append(f"  spec.storage.outputUri {loc.ignored} is not used: {loc.chosen_by} comes first")
    return lines


def _refuse_what_the_evaluator_cannot_run(exp, source: str) -> None:
    """What `ladder validate` refuses of the evaluation, refused before any training here too."""
    from ladder_api.validation import evaluation_problems
    from ladder_cli.cmd_spec import prompt_count_problems

    found = [f"{field}: {message}" for field, message in evaluation_problems(exp.spec)]
    found += prompt_count_problems(exp)
    if found:
        raise SpecError(source, found)


def cmd_run(args: argparse.Namespace) -> int:
    from ladder_api.loading import load_experiment
    from ladder_local.layout import run_location
    from ladder_local.runner import LocalRunner
    from ladder_local.tables import render_status
    from ladder_local.view import PlainView, default_view

    exp = load_experiment(args.file)
    _refuse_what_the_evaluator_cannot_run(exp, args.file)
    if args.parallel is not None and args.parallel < 1:
        raise UserError(f"-j/--parallel must be at least 1, got {args.parallel}")
    loc = run_location(exp, args.output)
    out_dir = loc.state_dir
    view = PlainView() if args.plain else default_view()
    runner = LocalRunner(exp, out_dir, outputs=loc.outputs, view=view, python=args.python,
                         max_parallel=args.parallel, force_eval=args.force_eval)
    print(f"ladder run: {exp.metadata.name} ({len(runner.plan.runs)} sizes, "
          f"{runner.max_parallel} task(s) at a time)", flush=True)
    print("\n".join(where_lines(loc)), flush=True)
    outcome = runner.run()
    print()
    print(render_status(exp.metadata.name, outcome.status, _expected(out_dir)))
    for msg in outcome.messages:
        print(f"\n{msg}", file=sys.stderr)
    measured = any(s.measurements and s.measurements.recorded for s in outcome.status.sizes)
    if not args.no_report and measured:
        print(f"\nreport: {_write_report(out_dir)}")
    elif not measured:
        print("\nno measurements yet, so no report")
    if outcome.interrupted:
        print(f"\nstopped; run `ladder run {args.file}"
              f"{' -o ' + args.output if args.output else ''}` again to resume")
    return outcome.exit_code


def _load_dir(path: str):
    from ladder_api.artifacts import read_status

    out_dir = Path(path)
    if not out_dir.is_dir():
        raise UserError(f"{out_dir} is not a directory; pass the run directory `ladder run` printed")
    status = read_status(out_dir)
    if status is None:
        raise UserError(f"{out_dir} has no status.json; pass the directory `ladder run` wrote "
                        "(default ./ladder-runs/<experiment name>)")
    return out_dir, status


def _expected(out_dir: Path) -> dict[int, int]:
    from ladder_api.artifacts import checkpoint_steps
    from ladder_api.grid import expected_ids
    from ladder_api.loading import load_run_configs

    return {run.width: len(expected_ids(run, checkpoint_steps(run.paths.checkpoints)))
            for run in load_run_configs(out_dir)}


def cmd_status(args: argparse.Namespace) -> int:
    from ladder_api.loading import load_run_configs
    from ladder_local.lock import runner_alive
    from ladder_local.tables import render_status

    _source(args)
    if args.experiment:
        exp = _cluster(args)
        if args.json:
            print(json.dumps(exp.status.to_wire(), indent=1))
        else:
            print(render_status(exp.name, exp.status, {}) + f"\n\nfiles (and results of record): {exp.root}")
        return 0
    out_dir, status = _load_dir(args.dir)
    if args.json:
        print(json.dumps(status.to_wire(), indent=1))
        return 0
    configs = load_run_configs(out_dir)
    name = configs[0].experiment.name if configs else out_dir.name
    alive = runner_alive(out_dir)
    note = None
    if status.phase.value == "Running" and not alive:
        note = "no `ladder run` is running here now: it was killed; run it again to resume"
    print(render_status(name, status, _expected(out_dir), note=note, examples_per_s=_speeds(configs, status)))
    return 0


def _speeds(configs, status) -> dict[int, float | None]:
    """Examples/s of the sizes training now, from the last line of their metrics."""
    from ladder_api.artifacts import read_metrics

    training = {s.width for s in status.sizes if s.phase.value == "Training"}
    out: dict[int, float | None] = {}
    for run in configs:
        if run.width in training:
            v = ((read_metrics(run.paths.metrics) or [{}])[-1]).get("examples_per_s")
            out[run.width] = float(v) if isinstance(v, int | float) else None
    return out


def cmd_report(args: argparse.Namespace) -> int:
    from ladder_report import write_report  # lazy: matplotlib
    from ladder_report.load import load_runs
    from ladder_report.render import write

    _source(args)
    if args.experiment:
        exp = _cluster(args)
        out = Path(args.output or Path("ladder-reports") / exp.name)
        print(f"report: {write(load_runs(exp.name, exp.runs(), exp.status, out)).html}")
        return 0
    print(f"report: {write_report(args.dir, args.output).html}")
    return 0
