"""`ladder sizes`: the model ladder with parameters, GFLOPs, normalised cost, and memory per chip.

Only ladder_api is imported at module level; `--verify` loads the trainer (JAX) lazily to count
the real Flax module's parameters beside the analytic counter.
"""

from __future__ import annotations

import argparse
import json

from ladder_api.errors import UserError
from ladder_api.ladder import PAPER_CONTEXT_DIM, PAPER_LATENT_SIZE, PAPER_WIDTHS, UNetShape, size_table
from ladder_api.tpu import SLICES


def register(sub) -> None:
    p = sub.add_parser(
        "sizes",
        help="print the model ladder: parameters, GFLOPs and cost (and memory per chip)",
        description="The paper's U-Net ladder as the analytic counter sees it.",
    )
    p.add_argument("--context-dim", type=int, default=PAPER_CONTEXT_DIM,
                   help="text context width (1024 reproduces Table 1; SD v1.5's CLIP-L is 768)")
    p.add_argument("--widths", type=lambda s: [int(x) for x in s.split(",")], default=list(PAPER_WIDTHS),
                   help="comma-separated widths (default: the paper's 11)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verify", action="store_true",
                   help="also count the real Flax module's parameters (loads JAX); exit 1 on a mismatch")
    p.add_argument("--slice", dest="slice_type", metavar="TYPE",
                   help="print the per-chip memory plan on this TPU slice type, e.g. v5p-32")
    p.add_argument("--global-batch", type=int, default=2048, help="global batch for the memory plan")
    p.add_argument("--fsdp", type=int, default=1, help="FSDP axis size for the memory plan")
    p.add_argument("--compute-dtype", choices=["bfloat16", "float32"], default="bfloat16")
    p.set_defaults(func=cmd_sizes)


def _memory_rows(args, widths) -> list[dict]:
    from ladder_api.memory import plan_memory

    if args.slice_type not in SLICES:
        valid = ", ".join(SLICES)
        raise UserError(f"--slice {args.slice_type!r} is not a known TPU slice type; valid: {valid}")
    st = SLICES[args.slice_type]
    per_chip = -(-args.global_batch // st.chips)
    rows = []
    for w in widths:
        plan = plan_memory(
            UNetShape(base_channels=w, context_dim=args.context_dim),
            latent_size=PAPER_LATENT_SIZE, context_tokens=77, per_chip_batch=per_chip,
            fsdp=min(args.fsdp, st.chips), compute_dtype=args.compute_dtype, hbm_bytes=st.hbm_bytes_per_chip,
        )
        rows.append({"width": w, "perChipBatch": per_chip, "fsdp": plan.fsdp, "remat": plan.remat,
                     "bytes": {name: b for name, b in plan.rows()}, "hbmBytes": st.hbm_bytes_per_chip,
                     "fits": plan.fits})
    return rows


def cmd_sizes(args: argparse.Namespace) -> int:
    rows = size_table(args.widths, context_dim=args.context_dim)
    out = [{"width": r.width, "params": r.params, "gflops": r.gflops, "normalizedCost": r.normalized_cost}
           for r in rows]
    mismatches = 0
    if args.verify:
        from ladder_trainer.models import param_count as module_count

        for row in out:
            shape = UNetShape(base_channels=row["width"], context_dim=args.context_dim)
            row["moduleParams"] = module_count(shape)
            mismatches += row["moduleParams"] != row["params"]
    memory = _memory_rows(args, args.widths) if args.slice_type else None
    if args.json:
        doc = {"contextDim": args.context_dim, "sizes": out}
        if memory is not None:
            doc["memory"] = {"slice": args.slice_type, "globalBatch": args.global_batch, "sizes": memory}
        print(json.dumps(doc, indent=2))
        return 1 if mismatches else 0
    head = f"{'c':>5} {'params':>15} {'GFLOPs':>9} {'cost':>6}"
    if args.verify:
        head += f" {'module params':>15}  check"
    print(f"U-Net ladder (SD v1.5 layout, context {args.context_dim}, 64x64x4 latents, 77 tokens)")
    print(head)
    for row in out:
        line = f"{row['width']:>5} {row['params']:>15,} {row['gflops']:>9.1f} {row['normalizedCost']:>6.2f}"
        if args.verify:
            ok = row["moduleParams"] == row["params"]
            line += f" {row['moduleParams']:>15,}  {'ok' if ok else 'MISMATCH'}"
        print(line)
    if memory is not None:
        st = SLICES[args.slice_type]
        hbm = st.hbm_bytes_per_chip / 2**30
        print(f"\nMemory per chip on {args.slice_type} ({st.chips} chips, {hbm:.0f} GiB "
              f"HBM each), global batch {args.global_batch}, fsdp {memory[0]['fsdp']}, {args.compute_dtype}:")
        names = list(memory[0]["bytes"])
        print(f"{'c':>5} " + " ".join(f"{_short(n):>10}" for n in names) + "  fits")
        for m in memory:
            cells = " ".join(f"{m['bytes'][n] / 2**30:>10.2f}" for n in names)
            fits = ("yes" if m["fits"] else "NO") + (" (remat)" if m["remat"] else "")
            print(f"{m['width']:>5} {cells}  {fits}")
        print("(GiB; activations assume per-block rematerialisation where marked)")
    if mismatches:
        print(f"\n{mismatches} size(s) differ between the Flax module and the analytic counter")
        return 1
    return 0


def _short(name: str) -> str:
    return {"parameters": "params", "gradients": "grads", "optimizer state": "adam", "EMA": "ema",
            "compute copy of weights": "w-copy", "total": "total"}.get(name, "activations")
