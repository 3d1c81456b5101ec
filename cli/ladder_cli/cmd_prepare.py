"""`ladder prepare`: training sets, reference sets and small autoencoders from images and captions.

    ladder prepare text-image SPEC (--webdataset URI... | --coco JSON --images DIR |
                                    --images DIR --captions JSONL) [--output URI]
                                   [--worker-index I --num-workers N] [--part-size K] [--batch-size B]
    ladder prepare reference SPEC (--coco JSON --images DIR | --images DIR --captions JSONL)
                                  [--num N] [--seed S] [--prompts-out URI] [--stats-out URI]
    ladder prepare train-autoencoder SPEC (sources as above) --output URI [--widths 32,64] [--steps N]
    ladder prepare convert-v1 SRC DST

The experiment spec says what to make: ladder.latentSize/latentChannels/contextDim/contextTokens
and data.autoencoder / data.textEncoder (weights and, optionally, their hashes). Workers of one
preparation share --output and each takes parts k with k % N == I (defaults: the indexed Job's
JOB_COMPLETION_INDEX and LADDER_PREPARE_WORKERS). Heavy libraries load lazily.
"""

from __future__ import annotations

import argparse
import os
import sys

from ladder_api.errors import UserError


def _sources(p) -> None:
    g = p.add_argument_group("input (one layout)")
    g.add_argument(
        "--webdataset",
        nargs="+",
        metavar="URI",
        help="tar shards ({key}.jpg|png|webp + {key}.txt|json): files, folders/prefixes, or "
        "brace patterns like shards/{00000..00099}.tar",
    )
    g.add_argument("--coco", metavar="JSON", help="COCO captions_*.json (with --images: its image folder)")
    g.add_argument("--images", metavar="URI", help="image folder or bucket prefix")
    g.add_argument(
        "--captions", metavar="JSONL", help='with --images: one {"file": ..., "caption": ...} a line'
    )
    g.add_argument(
        "--part-size",
        type=int,
        default=10_000,
        help="items per part for --coco / --captions (a tar shard is one part)",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="make training data, reference sets and autoencoders from images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ps = p.add_subparsers(dest="prepare_command", required=True, metavar="WHAT")

    t = ps.add_parser("text-image", help="image-caption pairs -> a training set of latents and embeddings")
    t.add_argument("spec", help="the experiment YAML, or a run's config JSON (the prepare JobSet's pods)")
    _sources(t)
    t.add_argument("--output", help="where the training set goes (default: data.trainUri)")
    t.add_argument("--worker-index", type=int, default=int(os.environ.get("JOB_COMPLETION_INDEX", 0)))
    t.add_argument("--num-workers", type=int, default=int(os.environ.get("LADDER_PREPARE_WORKERS", 1)))
    t.add_argument("--batch-size", type=int, default=32, help="images per autoencoder call")
    t.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored precision")
    t.add_argument("--decode-threads", type=int, default=4)
    t.add_argument("--staging-dir", help="local folder for a part before upload (default: the temp dir)")
    t.set_defaults(func=cmd_text_image)

    r = ps.add_parser("reference", help="an evaluation set: the prompts file and FID reference statistics")
    r.add_argument("spec", help="the experiment YAML")
    _sources(r)
    r.add_argument("--num", type=int, default=30_000, help="images (and prompts) to draw (the paper: 30k)")
    r.add_argument("--seed", type=int, default=0, help="seed of the draw (recorded)")
    r.add_argument("--prompts-out", help="the prompts .npz (default: data.referenceSet.uri)")
    r.add_argument("--stats-out", help="the statistics .npz (default: data.referenceSet.statsUri)")
    r.add_argument(
        "--cache-dir", default=None, help="where the digits classifier is cached (digits features)"
    )
    r.set_defaults(func=cmd_reference)

    a = ps.add_parser(
        "train-autoencoder", help="train a small AutoencoderKL (SD's architecture) on the images"
    )
    a.add_argument("spec", help="the experiment YAML (ladder.latentSize, ladder.latentChannels)")
    _sources(a)
    a.add_argument("--output", help="diffusers folder to write (default: data.autoencoder.weightsUri)")
    a.add_argument("--widths", default="32,64", help="block widths; image side = latentSize x 2^(levels-1)")
    a.add_argument("--layers-per-block", type=int, default=1)
    a.add_argument("--norm-groups", type=int, default=8)
    a.add_argument("--steps", type=int, default=500)
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--learning-rate", type=float, default=1e-3)
    a.add_argument("--kl-weight", type=float, default=1e-4)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--max-images", type=int, default=None, help="train on at most this many images")
    a.set_defaults(func=cmd_train_autoencoder)

    c = ps.add_parser("convert-v1", help="rewrite a ladder-latents/v1 set (npz shards) as v2")
    c.add_argument("src")
    c.add_argument("dst")
    c.set_defaults(func=cmd_convert)


def _experiment(path: str):
    from ladder_api.loading import load_experiment

    return load_experiment(path)


def _target(path: str):
    """The experiment YAML's Target, or a RunConfig JSON's (the prepare JobSet's pods read one)."""
    from ladder_api.loading import load_documents, load_run_config
    from ladder_prepare.target import Target

    docs = load_documents(path)
    if len(docs) == 1 and isinstance(docs[0], dict) and "kind" not in docs[0] and "model" in docs[0]:
        return Target.from_run_config(load_run_config(path, "spec "))
    return Target.from_spec(_experiment(path).spec)


def make_source(args):
    from ladder_prepare import sources

    chosen = [
        n
        for n, v in (("--webdataset", args.webdataset), ("--coco", args.coco), ("--captions", args.captions))
        if v
    ]
    if len(chosen) != 1:
        raise UserError(
            "give one input layout: --webdataset URI..., --coco JSON --images DIR, or --images DIR "
            f"--captions JSONL (got {', '.join(chosen) or 'none'})"
        )
    if args.webdataset:
        return sources.WebDataset(args.webdataset)
    if not args.images:
        raise UserError(f"{chosen[0]} needs --images: the folder the images are in")
    if args.coco:
        return sources.Coco(args.coco, args.images, args.part_size)
    return sources.ImageFolder(args.images, args.captions, args.part_size)


class RichProgress:
    """Parts and items as rich progress bars on a terminal; one line per part otherwise."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.bar = None

    def start(self, parts):
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=False,
            )
            self.bar.start()
            self.parts = self.bar.add_task("parts", total=parts)
            self.items_task = self.bar.add_task("items", total=None)

    def part(self, k, label):
        if self.bar:
            self.bar.update(self.items_task, description=f"part {k}: {label}")
        else:
            print(f"part {k}: {label}", file=sys.stderr)

    def items(self, n):
        if self.bar:
            self.bar.advance(self.items_task, n)

    def part_done(self, k, skipped_as_committed):
        if self.bar:
            self.bar.advance(self.parts)
        else:
            print(
                f"part {k}: {'already committed, skipped' if skipped_as_committed else 'committed'}",
                file=sys.stderr,
            )

    def close(self):
        if self.bar:
            self.bar.stop()


def cmd_text_image(args) -> int:
    from ladder_prepare import autoencoding, text_encoders, text_image

    target = _target(args.spec)
    source = make_source(args)
    encoder = autoencoding.load(target)
    text = text_encoders.load(target.text_encoder, target.context_dim, target.context_tokens)
    options = text_image.Options(
        output=args.output or target.train_uri,
        worker_index=args.worker_index,
        num_workers=args.num_workers,
        batch_size=args.batch_size,
        dtype=args.dtype,
        decode_threads=args.decode_threads,
        staging_dir=args.staging_dir,
    )
    if options.output.startswith("builtin:"):
        raise UserError(f"data.trainUri {options.output} is builtin: give --output (a path or gs:// URI)")
    summary = text_image.run(source, encoder, text, options, RichProgress())
    print_summary(summary, options)
    return 0


def print_summary(s, options) -> None:
    skipped = ", ".join(f"{r} {n}" for r, n in sorted(s.skipped.items())) or "none"
    print(
        f"worker {options.worker_index} of {options.num_workers}: wrote {len(s.parts_written)} parts "
        f"({s.examples_written} examples); already committed, skipped: {len(s.parts_already_committed)} "
        f"parts; items skipped: {skipped}"
    )
    if s.manifest is not None:
        m = s.manifest
        total = ", ".join(f"{r} {n}" for r, n in sorted(m.skipped.items())) or "none"
        print(
            f"{options.output}: manifest written: {m.num_examples} examples in {len(m.parts)} parts "
            f"(skipped in all: {total}); autoencoder {m.autoencoder.get('hash')}, text encoder "
            f"{m.text_encoder.get('name')} {m.text_encoder.get('hash')}"
        )
    else:
        print(
            f"{options.output}: {s.parts_missing} parts are not committed yet (other workers); the last "
            "worker to finish writes the manifest"
        )


def cmd_convert(args) -> int:
    from ladder_prepare.convert import convert_v1

    manifest = convert_v1(args.src, args.dst)
    print(f"{args.dst}: {manifest.num_examples} examples in {len(manifest.parts)} parts (ladder-latents/v2)")
    return 0


def _fid_features(experiment, cache_dir):
    """The evaluator's FID feature function for evaluation.fidFeatures: uint8 images -> features,
    through the very code that scores generated images (ladder_evaluator.metrics.fid)."""
    from ladder_api.spec import FidFeatures
    from ladder_evaluator.metrics import digits_classifier, fid
    from ladder_prepare.images import to_model_space

    ev = experiment.spec.evaluation
    if ev.fid_features == FidFeatures.inception:
        extractor = fid.inception_extractor(ev.inception_weights_uri)
    else:
        extractor = digits_classifier.extractor(cache_dir)
    return lambda u8: fid.features(to_model_space(u8), extractor, ev.batch_size), extractor


def cmd_reference(args) -> int:
    import hashlib
    import json

    from ladder_api import storage
    from ladder_evaluator.metrics import fid
    from ladder_prepare import autoencoding, reference, text_encoders
    from ladder_prepare.target import Target

    experiment = _experiment(args.spec)
    target = Target.from_spec(experiment.spec)
    source = make_source(args)
    if not hasattr(source, "entries"):
        raise UserError("prepare reference reads --coco or --images/--captions (a listed set to draw from)")
    prompts_uri = args.prompts_out or target.reference_uri
    stats_uri = args.stats_out or target.stats_uri
    if prompts_uri.startswith("builtin:") or not stats_uri:
        raise UserError("give --prompts-out and --stats-out, or set data.referenceSet.uri and statsUri")
    size, channels = autoencoding.image_geometry(target)
    text = text_encoders.load(target.text_encoder, target.context_dim, target.context_tokens)
    features, extractor = _fid_features(experiment, args.cache_dir)
    arrays, feats = reference.prepare(source.entries, args.num, args.seed, size, channels, text, features)
    prompts_hash = reference.write_npz(prompts_uri, arrays)
    fid.save_stats(stats_uri, *fid.statistics(feats))
    stats_hash = "sha256:" + hashlib.sha256(storage.read_bytes(stats_uri)).hexdigest()
    record = {
        "prompts": {"uri": prompts_uri, "sha256": prompts_hash, "num": args.num, "seed": args.seed},
        "stats": {"uri": stats_uri, "sha256": stats_hash, "features": extractor.name, "image_size": size},
        "text_encoder": text.identity(),
        "source": source.describe(),
        "passed_over": json.loads(str(arrays["meta"]))["passed_over"],
    }
    record_uri = storage.join(prompts_uri.rsplit("/", 1)[0], "reference.json")
    storage.write_text(record_uri, json.dumps(record, indent=1) + "\n")
    print(f"{prompts_uri}: {args.num} prompts (seed {args.seed}), {prompts_hash}")
    print(
        f"{stats_uri}: fid-{extractor.name} statistics of the same {args.num} images at {size}x{size}, "
        f"{stats_hash}"
    )
    print(f"{record_uri}: what was drawn and both hashes")
    return 0


def cmd_train_autoencoder(args) -> int:
    from ladder_prepare import train_autoencoder as ta
    from ladder_prepare.target import Target
    from ladder_trainer.weights.hashing import weights_hash

    target = Target.from_spec(_experiment(args.spec).spec)
    output = args.output or target.autoencoder.weights_uri
    if not output:
        raise UserError("give --output, or set data.autoencoder.weightsUri: where the autoencoder is written")
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise UserError(f"--widths {args.widths!r}: comma-separated integers, e.g. 32,64") from None
    recipe = ta.Recipe(
        widths,
        args.layers_per_block,
        args.norm_groups,
        args.steps,
        args.batch_size,
        args.learning_rate,
        args.kl_weight,
        args.seed,
    )
    config = recipe.config(target.latent_channels, 3)
    size = target.latent_size * config.downsample_factor
    images, skipped = ta.collect_images(make_source(args), size, 3, args.max_images)
    print(
        f"training on {len(images)} images of {size}x{size} ({skipped} skipped), {args.steps} steps",
        file=sys.stderr,
    )
    params, losses = ta.train(images, config, recipe, _step_progress(args.steps))
    config = ta.save(output, config, params, images)
    from ladder_trainer.weights import files

    digest = weights_hash([str(files.locate(output, "vae")[1])])
    print(
        f"{output}: AutoencoderKL {list(widths)} x {args.layers_per_block}, {config.latent_channels} latent "
        f"channels, loss {losses[:10].mean():.4f} -> {losses[-10:].mean():.4f}, reconstruction error "
        f"{ta.reconstruction_error(config, params, images[:256]):.4f}"
    )
    print(
        "in the spec:\n  data:\n    autoencoder:\n      kind: sd-vae\n"
        f"      weightsUri: {output}\n      scalingFactor: {config.scaling_factor}\n      hash: {digest}"
    )
    return 0


def _step_progress(total: int):
    if not sys.stderr.isatty():
        return lambda step, loss: (
            (step % max(1, total // 10) == 0)
            and print(f"step {step}/{total} loss {loss:.4f}", file=sys.stderr)
        )
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", dynamic_ncols=True)

    def update(step, loss):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        if step == total:
            bar.close()

    return update
