"""diffusers model folders (what ``save_pretrained`` writes) load into the ladder's Flax modules
with equal outputs, save back into folders diffusers loads unchanged, and every mismatch is one
UserError naming the file and the tensors."""

import functools
import json
import shutil

import jax
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ladder_api.errors import UserError
from ladder_api.ladder import UNetShape
from ladder_trainer.models import abstract_params, build_unet
from ladder_trainer.models import autoencoder as ae
from ladder_trainer.weights import convert, load_autoencoder, load_unet, save_autoencoder, save_unet

from . import diffusers_models as ref

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    model = ref.vae(**ref.SMALL_VAE)
    folder = tmp_path_factory.mktemp("vae")
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def unet_dir(tmp_path_factory):
    model = ref.unet(**ref.SMALL_UNET)
    folder = tmp_path_factory.mktemp("unet")
    model.save_pretrained(folder)
    return model, folder


def tree_equal(a, b) -> bool:
    same = jax.tree_util.tree_map(lambda x, y: x.shape == y.shape and bool(np.array_equal(x, y)), a, b)
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(
        jax.tree_util.tree_leaves(same))


def copy_folder(src, dst, state=None):
    """A model folder with src's config.json and (optionally) a replaced state dict."""
    dst.mkdir(parents=True)
    shutil.copy(src / "config.json", dst / "config.json")
    if state is None:
        shutil.copy(src / WEIGHTS, dst / WEIGHTS)
    else:
        tensors = {k: v.contiguous() for k, v in state.items()}
        save_file(tensors, str(dst / WEIGHTS), metadata={"format": "pt"})
    return dst


# --- the autoencoder ----------------------------------------------------------------------------


def test_vae_folder_loads_with_diffusers_outputs(vae_dir):
    torch_vae, folder = vae_dir
    config, params = load_autoencoder(str(folder))
    assert config == ae.AutoencoderConfig(**ref.SMALL_VAE)
    # test_autoencoder.py's image shape: the same config and shape reuse its compiled encode/decode
    x = np.random.default_rng(0).uniform(-1, 1, (2, 24, 32, 3)).astype(np.float32)
    with torch.no_grad():
        mean = torch_vae.encode(ref.nchw(x)).latent_dist.mean
        decoded = torch_vae.decode(mean).sample
    codec = ae.codec(config)
    ref.assert_close(codec.encode(params, x), config.scaling_factor * ref.nhwc(mean))
    ref.assert_close(codec.decode(params, config.scaling_factor * ref.nhwc(mean)), ref.nhwc(decoded))


def test_vae_from_a_pipeline_folder_a_file_path_and_legacy_names(vae_dir, tmp_path):
    torch_vae, folder = vae_dir
    _, params = load_autoencoder(str(folder))
    pipeline = tmp_path / "stable-diffusion"
    shutil.copytree(folder, pipeline / "vae")
    assert tree_equal(load_autoencoder(str(pipeline))[1], params)
    assert tree_equal(load_autoencoder(f"file://{folder}/{WEIGHTS}")[1], params)
    # sd-vae-ft-mse's file names the mid-block attention as diffusers did before 0.14.
    legacy = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    state = {}
    for k, v in torch_vae.state_dict().items():
        for new, old in legacy.items():
            k = k.replace(f".{new}.", f".{old}.")
        state[k] = v
    assert any(".proj_attn." in k for k in state)
    assert tree_equal(load_autoencoder(str(copy_folder(folder, tmp_path / "legacy", state)))[1], params)


def test_saved_vae_is_a_diffusers_folder_and_loads_back_exactly(vae_dir, tmp_path):
    torch_vae, folder = vae_dir
    config, params = load_autoencoder(str(folder))
    save_autoencoder(str(tmp_path / "saved"), config, params)
    again, info = ref.AutoencoderKL.from_pretrained(tmp_path / "saved", output_loading_info=True)
    assert not any(info.values()), info
    assert again.config.scaling_factor == config.scaling_factor
    for k, v in torch_vae.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    config2, params2 = load_autoencoder(str(tmp_path / "saved"))
    assert config2 == config and tree_equal(params2, params)


def test_sd_vae_layout_maps_every_tensor():
    n = len(ref.SD_VAE["block_out_channels"])
    model = ref.on_meta(ref.AutoencoderKL, **ref.SD_VAE, down_block_types=("DownEncoderBlock2D",) * n,
                        up_block_types=("UpDecoderBlock2D",) * n)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = convert.slots(ae.abstract_params(ae.SD_VAE), n)
    assert set(expected) == set(shapes)
    assert convert.problems(shapes, expected) == []
    assert all(expected[k].torch_shape == s for k, s in shapes.items())


# --- the U-Net ----------------------------------------------------------------------------------


@functools.lru_cache
def unet_apply(shape):
    return jax.jit(build_unet(shape).apply)


def check_unet_outputs(torch_unet, shape, params):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 10, 4)).astype(np.float32)
    t = np.array([3.0, 701.0], np.float32)
    ctx = rng.normal(size=(2, 5, 12)).astype(np.float32)
    with torch.no_grad():
        expected = torch_unet(ref.nchw(x), torch.from_numpy(t), torch.from_numpy(ctx)).sample
    ref.assert_close(unet_apply(shape)({"params": params}, x, t, ctx), ref.nhwc(expected))


def test_unet_folder_loads_with_diffusers_outputs(unet_dir):
    torch_unet, folder = unet_dir
    shape, params = load_unet(str(folder))
    assert shape == UNetShape(base_channels=16, context_dim=12, channel_mult=(1, 2), num_res_blocks=1,
                              attention_levels=(1,), num_heads=4, norm_groups=8, transformer_depth=2)
    check_unet_outputs(torch_unet, shape, params)


def test_unet_with_linear_projections_loads(tmp_path):
    """SD 2.x stores proj_in/proj_out as linears, SD 1.x as 1x1 convs: the same map."""
    torch_unet = ref.unet(seed=5, **ref.SMALL_UNET, use_linear_projection=True)
    torch_unet.save_pretrained(tmp_path)
    assert load_file(tmp_path / WEIGHTS)["down_blocks.1.attentions.0.proj_in.weight"].ndim == 2
    shape, params = load_unet(str(tmp_path))
    check_unet_outputs(torch_unet, shape, params)


def test_saved_unet_is_a_diffusers_folder_and_loads_back_exactly(unet_dir, tmp_path):
    torch_unet, folder = unet_dir
    shape, params = load_unet(str(folder))
    save_unet(str(tmp_path / "saved"), shape, params)
    again, info = ref.UNet2DConditionModel.from_pretrained(tmp_path / "saved", output_loading_info=True)
    assert not any(info.values()), info
    for k, v in torch_unet.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    shape2, params2 = load_unet(str(tmp_path / "saved"))
    assert shape2 == shape and tree_equal(params2, params)


def test_sd15_unet_layout_maps_every_tensor():
    """SD v1.5's UNet2DConditionModel is the ladder's c = 320 with a 768-wide context, tensor for tensor."""
    from ladder_trainer.weights import configs

    model = ref.on_meta(ref.UNet2DConditionModel, **ref.SD15_UNET)
    shape = configs.unet_from_diffusers(dict(model.config), "sd15")
    assert shape == UNetShape(base_channels=320, context_dim=768)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = convert.slots(abstract_params(shape), 4)
    assert set(expected) == set(shapes)
    assert convert.problems(shapes, expected) == []
    assert sum(np.prod(s) for s in shapes.values()) == 859_520_964
    assert configs.unet_from_diffusers(configs.unet_to_diffusers(shape), "saved") == shape


# --- user errors --------------------------------------------------------------------------------


def test_every_mismatched_tensor_is_named_in_one_error(vae_dir, tmp_path):
    torch_vae, folder = vae_dir
    state = dict(torch_vae.state_dict())
    del state["decoder.conv_in.bias"]
    state["encoder.conv_in.weight"] = torch.zeros(8, 3, 5, 5)
    state["encoder.extra.weight"] = torch.zeros(2)
    bad = copy_folder(folder, tmp_path / "bad", state)
    with pytest.raises(UserError) as err:
        load_autoencoder(str(bad))
    msg = str(err.value)
    assert msg.startswith(f"{bad / WEIGHTS}: does not hold the AutoencoderKL")
    assert "1 of the 124 expected tensors missing, 1 with another shape, 1 unexpected" in msg
    assert "missing tensor decoder.conv_in.bias (expected shape (16,))" in msg
    assert "tensor encoder.conv_in.weight has shape (8, 3, 5, 5), expected (8, 3, 3, 3)" in msg
    assert "unexpected tensor encoder.extra.weight (shape (2,))" in msg


def test_the_wrong_model_or_file_is_refused(vae_dir, unet_dir, tmp_path):
    _, vae_folder = vae_dir
    _, unet_folder = unet_dir
    with pytest.raises(UserError, match=r"_class_name is 'UNet2DConditionModel', expected 'AutoencoderKL'"):
        load_autoencoder(str(unet_folder))
    # A VAE's config.json beside a U-Net's weights: reported by name, the long lists cut short.
    mixed = copy_folder(vae_folder, tmp_path / "mixed")
    shutil.copy(unet_folder / WEIGHTS, mixed / WEIGHTS)
    n_unet = len(load_file(unet_folder / WEIGHTS))
    summary = f"124 of the 124 expected tensors missing, 0 with another shape, {n_unet} unexpected"
    with pytest.raises(UserError, match=rf"(?s){summary}.*missing tensor decoder\.conv_in\.bias.* more"):
        load_autoencoder(str(mixed))
    garbage = copy_folder(vae_folder, tmp_path / "garbage")
    (garbage / WEIGHTS).write_bytes(b"this is not a safetensors file")
    with pytest.raises(UserError, match=f"{garbage / WEIGHTS}: not a readable safetensors file"):
        load_autoencoder(str(garbage))
    (garbage / WEIGHTS).unlink()
    with pytest.raises(UserError, match=f"{garbage / WEIGHTS}: not found .*config.json"):
        load_autoencoder(str(garbage))
    with pytest.raises(UserError, match=f"{tmp_path / 'nowhere' / 'config.json'}: not found"):
        load_unet(str(tmp_path / "nowhere"))
    (garbage / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json: not valid JSON"):
        load_autoencoder(str(garbage))


def test_unsupported_config_options_are_named(vae_dir, unet_dir, tmp_path):
    for (_, folder), field, value in [
        (vae_dir, "shift_factor", 0.1159),  # SD3's VAE
        (unet_dir, "attention_head_dim", [5, 10]),  # SD 2.x: a fixed head size, not a fixed head count
        (unet_dir, "class_embed_type", "timestep"),
    ]:
        target = copy_folder(folder, tmp_path / field)
        cfg = json.loads((target / "config.json").read_text())
        (target / "config.json").write_text(json.dumps({**cfg, field: value}))
        load = load_autoencoder if folder == vae_dir[1] else load_unet
        with pytest.raises(UserError, match=f"config.json: .*{field}"):
            load(str(target))
