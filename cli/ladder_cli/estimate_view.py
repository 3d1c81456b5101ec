"""`ladder plan --estimate` and the estimate line of `ladder validate`: ladder_api.estimate printed.

The flags' parsers live here too, so a bad value is refused by argparse (exit 2, the flag named)
before anything is computed.
"""

from __future__ import annotations

import argparse

from ladder_api.estimate import DEFAULT_EVAL_MFU, DEFAULT_TRAIN_MFU, Assumptions, StudyEstimate
from ladder_api.ladder import format_params


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a utilisation in (0, 1], e.g. 0.45; got {text!r}")
    return value


def price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a price per chip-hour >= 0, e.g. 1.2; got {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (1 <= value < 1e18 and value.is_integer()):
        raise argparse.ArgumentTypeError(f"must be a positive whole number, e.g. 600e6; got {text!r}")
    return int(value)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--estimate", action="store_true",
                   help="print the study's cost per size instead of the run configs: chip-hours, "
                   "wall-clock hours, storage (and money with --price-per-chip-hour)")
    p.add_argument("--mfu", type=fraction, metavar="F",
                   help=f"utilisation of training and evaluation (default {DEFAULT_TRAIN_MFU:g} for "
                   f"training, {DEFAULT_EVAL_MFU:g} for evaluation, from bench/)")
    p.add_argument("--eval-mfu", type=fraction, metavar="F", help="utilisation of evaluation alone")
    p.add_argument("--price-per-chip-hour", type=price, metavar="P", help="price of one chip-hour")
    p.add_argument("--dataset-examples", type=count, metavar="N",
                   help="training examples stored (default: one pass of steps x globalBatch)")
    p.add_argument("--json", action="store_true", help="with --estimate: the estimate as JSON")


ESTIMATE_ONLY = ("mfu", "eval_mfu", "price_per_chip_hour", "dataset_examples", "json")


def misused_flags(args: argparse.Namespace) -> list[str]:
    """The estimate's flags given without --estimate, as the user wrote them."""
    if args.estimate:
        return []
    given = [name for name in ESTIMATE_ONLY if getattr(args, name) not in (None, False)]
    return [f"--{name.replace('_', '-')}" for name in given]


def assumptions(args: argparse.Namespace) -> Assumptions:
    train = args.mfu or DEFAULT_TRAIN_MFU
    return Assumptions(
        train_mfu=train,
        eval_mfu=args.eval_mfu or args.mfu or DEFAULT_EVAL_MFU,
        price_per_chip_hour=args.price_per_chip_hour,
        dataset_examples=args.dataset_examples,
    )


# --- formatting --------------------------------------------------------------------------------


def chip_hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 10 else f"{h:.2g}"


def wall(h: float) -> str:
    return f"{h:,.0f} h ({h / 24:,.1f} d)" if h >= 48 else f"{h:.3g} h"


def data_size(n: float) -> str:
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def flops(n: float) -> str:
    return f"{n:.3g}"


def money(value: float) -> str:
    return f"{value:,.0f}"


def summary_line(study: StudyEstimate) -> str:
    """One line for `ladder validate`."""
    a = study.assumptions
    cost = ""
    if study.cost() is not None:
        cost = f", {money(study.cost())} at {a.price_per_chip_hour:g}/chip-hour"
    return (
        f"estimate: {chip_hours(study.chip_hours)} chip-hours (training {chip_hours(study.train_chip_hours)} "
        f"at MFU {a.train_mfu:.0%}, evaluation {chip_hours(study.eval_chip_hours)} at {a.eval_mfu:.0%}), "
        f"storage {data_size(study.storage_bytes)}{cost}; per size: ladder plan --estimate"
    )


HEADERS = ("c", "params", "train slice", "train FLOPs", "train chip-h", "train wall",
           "eval slice", "eval FLOPs", "eval chip-h", "eval wall", "checkpoints", "chip-h")


def size_rows(study: StudyEstimate) -> list[list[str]]:
    rows = []
    for s in study.sizes:
        row = [f"c{s.width}", format_params(s.params), f"{s.slice} ({s.chips})", flops(s.train_flops),
               chip_hours(s.train_chip_hours), wall(s.train_hours), f"{s.eval_slice} ({s.eval_chips})",
               flops(s.eval_flops), chip_hours(s.eval_chip_hours), wall(s.eval_hours),
               f"{s.checkpoints_kept} x {data_size(s.checkpoint_bytes)}", chip_hours(s.chip_hours)]
        if study.cost() is not None:
            row.append(money(study.cost(s.chip_hours)))
        rows.append(row)
    return rows


def total_row(study: StudyEstimate) -> list[str]:
    train = sum(s.train_flops for s in study.sizes)
    evaluation = sum(s.eval_flops for s in study.sizes)
    row = ["total", "", "", flops(train), chip_hours(study.train_chip_hours), "", "", flops(evaluation),
           chip_hours(study.eval_chip_hours), "", data_size(study.checkpoint_bytes),
           chip_hours(study.chip_hours)]
    if study.cost() is not None:
        row.append(money(study.cost()))
    return row


def notes(study: StudyEstimate) -> list[str]:
    a = study.assumptions
    lines = [
        f"training data: {study.dataset_examples:,} examples, latents {data_size(study.latent_bytes)}, "
        f"text embeddings {data_size(study.embedding_bytes)} (float16); checkpoints "
        f"{data_size(study.checkpoint_bytes)}; storage in all {data_size(study.storage_bytes)}",
        f"assumed utilisation: training {a.train_mfu:.0%}, evaluation {a.eval_mfu:.0%} of the chips' bf16 "
        "peak (--mfu, --eval-mfu); wall-clock: chip-hours over the slice's chips, every chip busy",
    ]
    if study.cost() is not None:
        lines.append(f"money at {a.price_per_chip_hour:g} per chip-hour: {money(study.cost())}")
    return lines


def print_table(study: StudyEstimate, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 200), highlight=False)
    table = Table(title=title)
    for h in HEADERS + (("cost",) if study.cost() is not None else ()):
        table.add_column(h, justify="left" if h.endswith("slice") or h == "c" else "right", no_wrap=True)
    for row in size_rows(study):
        table.add_row(*row)
    table.add_section()
    table.add_row(*total_row(study), style="bold")
    console.print(table)
    for line in notes(study):
        console.print(line, soft_wrap=True)


def to_json(study: StudyEstimate) -> dict:
    """The estimate for tools: per size and totals, FLOPs, chip-hours, hours, bytes, money."""
    a = study.assumptions
    sizes = [{
        "width": s.width, "params": s.params, "slice": s.slice, "chips": s.chips,
        "trainFlops": s.train_flops, "trainChipHours": s.train_chip_hours, "trainHours": s.train_hours,
        "evalSlice": s.eval_slice, "evalChips": s.eval_chips, "checkpointsEvaluated": s.checkpoints_evaluated,
        "evalFlops": s.eval_flops, "evalUnetFlops": s.eval.unet * s.checkpoints_evaluated,
        "evalDecoderFlops": s.eval.decoder * s.checkpoints_evaluated,
        "evalFeatureFlops": s.eval.features * s.checkpoints_evaluated,
        "evalChipHours": s.eval_chip_hours, "evalHours": s.eval_hours,
        "checkpointsKept": s.checkpoints_kept, "checkpointBytes": s.checkpoint_bytes,
        "chipHours": s.chip_hours, "cost": study.cost(s.chip_hours),
    } for s in study.sizes]
    return {
        "assumptions": {"trainMfu": a.train_mfu, "evalMfu": a.eval_mfu,
                        "pricePerChipHour": a.price_per_chip_hour, "datasetExamples": study.dataset_examples},
        "sizes": sizes,
        "total": {"trainChipHours": study.train_chip_hours, "evalChipHours": study.eval_chip_hours,
                  "chipHours": study.chip_hours, "latentBytes": study.latent_bytes,
                  "embeddingBytes": study.embedding_bytes, "checkpointBytes": study.checkpoint_bytes,
                  "storageBytes": study.storage_bytes, "cost": study.cost()},
    }
