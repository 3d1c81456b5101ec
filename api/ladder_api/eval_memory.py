"""Analytic per-chip memory of decoding an evaluation batch: can the eval slice hold it?

Pure (no JAX), so `ladder validate` and the operator refuse a spec whose evaluation would run out
of memory in its decoder only after the size has trained. The evaluator decodes each batch of
evaluation.batchSize latents at once, split over the eval slice's chips (ladder_evaluator.decode:
padded to batchSize, so a chip decodes ceil(batchSize / chips) images), while the U-Net's
parameters stay on every chip for the next batch. Per chip:

  U-Net parameters        P x sampling bytes (evaluation.samplingDtype: the evaluator reads the
                          checkpoint's convolution and dense weights in that dtype, replicated)
  decoder parameters      the SD decoder's, float32
  decode activations      images per chip x the decoder's working set per image (float32)

The working set counted is the least any backend needs: the widest convolution's input and output
at once (at full resolution, cin + cout channels; SD's at 512x512 pixels: 0.38 GiB per image).
XLA:CPU keeps more, the whole ResNet block (input, normalised input, both convolutions' outputs
and the shortcut: 2 cin + 3 cout channels, decoder_peak_elements(block=True)), which matches its memory
analysis of the real decoder exactly (SD's at 64x64 pixels: 14.0 MiB;
tests/trainer/test_eval_memory.py re-checks a tiny one), 2.3x the bound. Sampling's own working
set is not counted (it runs before the decode). So this is a lower bound: a spec refused here
cannot run; one accepted near the bound may still run out of memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ladder_api.frozen_cost import SD_DECODER, DecoderShape
from ladder_api.ladder import param_count
from ladder_api.memory import DTYPE_BYTES, gib
from ladder_api.tpu import SLICES

FIELD = "evaluation.batchSize"


def decoder_params(shape: DecoderShape) -> int:
    """Parameters of an SD AutoencoderKL decoder (post_quant_conv, conv_in, mid block, up blocks,
    output norm and conv), as diffusers builds it; SD's: 49,490,199."""
    def conv(cin, cout, k):
        return k * k * cin * cout + cout

    def res(cin, cout):
        n = 2 * cin + conv(cin, cout, 3) + 2 * cout + conv(cout, cout, 3)
        return n + (conv(cin, cout, 1) if cin != cout else 0)

    chans = list(reversed(shape.block_out_channels))
    top, lat = chans[0], shape.latent_channels
    n = conv(lat, lat, 1) + conv(lat, top, 3) + 2 * res(top, top) + 2 * top + 4 * (top * top + top)
    cin = top
    for level, cout in enumerate(chans):
        for _ in range(shape.layers_per_block + 1):
            n += res(cin, cout)
            cin = cout
        if level < len(chans) - 1:
            n += conv(cout, cout, 3)
    return n + 2 * cin + conv(cin, shape.out_channels, 3)


def decoder_peak_elements(shape: DecoderShape, latent_size: int, block: bool = False) -> int:
    """Float32 elements live at the decoder's peak for one image: the widest convolution's input
    and output (block=False, the bound) or its whole ResNet block (block=True, XLA:CPU's)."""
    chans = list(reversed(shape.block_out_channels))
    side, cin = latent_size, chans[0]
    tokens = side * side
    peak = 2 * tokens * tokens + 5 * tokens * cin if block else tokens * tokens  # mid attention
    for level, cout in enumerate(chans):
        for _ in range(shape.layers_per_block + 1):
            peak = max(peak, side * side * ((2 * cin + 3 * cout) if block else (cin + cout)))
            cin = cout
        if level < len(chans) - 1:
            peak = max(peak, side * side * cout + (2 if block else 1) * (2 * side) ** 2 * cout)
            side *= 2
    return peak


@dataclass(frozen=True)
class DecodePlan:
    width: int
    images_per_chip: int
    unet_params_bytes: float
    decoder_params_bytes: float
    activation_bytes: float
    hbm_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.unet_params_bytes + self.decoder_params_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.hbm_bytes

    def largest_batch(self, chips: int) -> int:
        """The largest evaluation.batchSize whose decode fits (0: the parameters alone do not)."""
        free = self.hbm_bytes - self.unet_params_bytes - self.decoder_params_bytes
        per_image = self.activation_bytes / self.images_per_chip
        return max(0, math.floor(free / per_image)) * chips


def sampling_dtype(spec, width: int) -> str:
    """evaluation.samplingDtype resolved: the dtype the evaluator holds and computes the U-Net in."""
    chosen = spec.evaluation.sampling_dtype
    return str(spec.training_for(width).compute_dtype) if chosen == "training" else chosen


def decode_plan(spec, width: int, decoder: DecoderShape = SD_DECODER) -> DecodePlan:
    from ladder_api.plan import model_config

    st = SLICES[spec.resources.eval_slice.slice_type]
    model = model_config(spec.ladder, width)
    per_chip = math.ceil(spec.evaluation.batch_size / st.chips)
    return DecodePlan(
        width=width,
        images_per_chip=per_chip,
        unet_params_bytes=param_count(model.shape()) * DTYPE_BYTES[sampling_dtype(spec, width)],
        decoder_params_bytes=4.0 * decoder_params(decoder),
        activation_bytes=4.0 * per_chip * decoder_peak_elements(decoder, model.latent_size),
        hbm_bytes=st.hbm_bytes_per_chip,
    )


def decode_memory_problems(spec) -> list[tuple[str, str]]:
    """(field, message) per width whose eval slice cannot decode its batches (sd-vae only)."""
    if spec.data.autoencoder.kind != "sd-vae":
        return []
    slice_type = spec.resources.eval_slice.slice_type
    chips = SLICES[slice_type].chips
    out = []
    for w in spec.ladder.widths:
        plan = decode_plan(spec, w)
        if plan.fits:
            continue
        need = (f"width {w}: decoding a batch of {spec.evaluation.batch_size} puts "
                f"{plan.images_per_chip} images on each of the {chips} chips of {slice_type}, about "
                f"{gib(plan.total_bytes)} per chip (U-Net parameters {gib(plan.unet_params_bytes)}, "
                f"decoder {gib(plan.decoder_params_bytes)}, decoding {gib(plan.activation_bytes)}) "
                f"but a chip has {gib(plan.hbm_bytes)}")
        batch = plan.largest_batch(chips)
        if batch:
            out.append((f"spec.{FIELD}", f"{need}; use evaluation.batchSize {batch} or less, or a "
                        "larger resources.evalSlice"))
        else:
            out.append(("spec.resources.evalSlice", f"{need}; the parameters alone do not fit: use "
                        "an eval slice with more memory per chip"))
    return out
