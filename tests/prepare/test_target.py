"""What a preparation must produce is the same whether it is read from the spec (`ladder prepare
SPEC`) or from a run config (a pod of the preparation JobSet)."""

from __future__ import annotations

from ladder_api.loading import load_experiment
from ladder_api.plan import expand
from ladder_prepare.target import Target

from .conftest import spec_file


def test_a_run_config_and_its_spec_give_one_target(tmp_path):
    ref = {"uri": str(tmp_path / "p.npz"), "statsUri": str(tmp_path / "s.npz")}
    path = spec_file(tmp_path / "exp.yaml", autoencoder={"kind": "identity"},
                     ladder={"latentChannels": 1, "contextTokens": 6}, data={"referenceSet": ref})
    exp = load_experiment(path)
    target = Target.from_spec(exp.spec)
    assert (target.latent_channels, target.context_tokens, target.context_dim) == (1, 6, 32)
    assert (target.reference_uri, target.stats_uri) == (str(tmp_path / "p.npz"), str(tmp_path / "s.npz"))
    assert all(Target.from_run_config(run) == target for run in expand(exp).runs)
