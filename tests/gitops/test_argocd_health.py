"""The Argo CD health check for ScalingExperiment, run by real Lua interpreters (lupa).

Argo CD runs health scripts in gopher-lua, a Lua 5.1, with the base and table libraries and a
safe os (no string library). The script runs here in Lua 5.1 and 5.4 inside an environment that
holds only those functions, so a call Argo CD would not allow fails here too.
"""

from __future__ import annotations

from pathlib import Path

import lupa.lua51
import lupa.lua54
import pytest
import yaml

from ladder_api.spec import ScalingExperiment
from ladder_api.status import ScalingExperimentStatus

ROOT = Path(__file__).resolve().parents[2]
CHECK_DIR = ROOT / "gitops/argocd/resource_customizations/ladder.dev/ScalingExperiment"
HEALTH_LUA = (CHECK_DIR / "health.lua").read_text()
CASES = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())["tests"]
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
SAFE_GLOBALS = ("ipairs", "pairs", "next", "type", "tostring", "tonumber", "error", "pcall", "select",
                "table")


def _to_lua(lua, value):
    """JSON-shaped Python data to Lua tables, as Argo CD does (null fields are absent)."""
    if isinstance(value, dict):
        table = lua.table()
        for key, sub in value.items():
            if sub is not None:
                table[key] = _to_lua(lua, sub)
        return table
    if isinstance(value, list):
        return lua.table(*[_to_lua(lua, v) for v in value])
    return value


def run_health(version: str, obj: dict) -> dict:
    lua = {"lua51": lupa.lua51, "lua54": lupa.lua54}[version].LuaRuntime(unpack_returned_tuples=True)
    env = lua.table()
    genv = lua.globals()
    for name in SAFE_GLOBALS:
        env[name] = genv[name]
    env["obj"] = _to_lua(lua, obj)
    if version == "lua51":
        chunk = lua.eval("function(code, env) local f = assert(loadstring(code, 'health.lua')); "
                         "setfenv(f, env); return f end")(HEALTH_LUA, env)
    else:
        chunk = lua.eval("function(code, env) return assert(load(code, 'health.lua', 't', env)) end")(
            HEALTH_LUA, env
        )
    result = chunk()
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


@pytest.mark.parametrize("version", ["lua51", "lua54"])
@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_status_from_fixture(case, version):
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    assert run_health(version, obj) == case["healthStatus"]


def test_fixtures_cover_the_four_states_argo_cd_shows():
    seen = {case["healthStatus"]["status"] for case in CASES}
    assert {"Progressing", "Healthy", "Degraded", "Suspended"} <= seen
    assert seen <= ARGO_STATUSES


@pytest.mark.parametrize("path", sorted((CHECK_DIR / "testdata").glob("*.yaml")), ids=lambda p: p.stem)
def test_fixtures_are_valid_experiments_with_a_valid_status(path):
    """Fixtures must look like what the operator writes, or the check is tested against fiction."""
    obj = yaml.safe_load(path.read_text())
    status = obj.pop("status", None)
    ScalingExperiment.model_validate(obj)
    if status is not None:
        ScalingExperimentStatus.model_validate(status)


def test_degraded_wins_over_suspended_and_ready():
    obj = yaml.safe_load((CHECK_DIR / "testdata/healthy.yaml").read_text())
    conditions = [c for c in obj["status"]["conditions"] if c["type"] != "Degraded"]
    obj["status"]["conditions"] = conditions + [
        {"type": "Suspended", "status": "True", "reason": "SpecSuspend"},
        {"type": "Degraded", "status": "True", "reason": "JobSetFailed", "message": "c64 failed"},
    ]
    assert run_health("lua51", obj) == {"status": "Degraded", "message": "c64 failed"}


def test_the_script_uses_no_library_argo_cd_withholds():
    """A string-library call passes in plain Lua but fails in Argo CD: the sandbox must catch it."""
    obj = {"status": {"phase": "Running"}}
    with pytest.raises(lupa.lua51.LuaError, match="global 'string'"):
        lua = lupa.lua51.LuaRuntime()
        env = lua.table(obj=_to_lua(lua, obj))
        lua.eval("function(code, env) local f = assert(loadstring(code)); setfenv(f, env); return f end")(
            "return string.lower(obj.status.phase)", env
        )()


def test_argocd_cm_patch_embeds_the_same_script():
    patch = yaml.safe_load((ROOT / "gitops/argocd/argocd-cm-patch.yaml").read_text())
    key = "resource.customizations.health.ladder.dev_ScalingExperiment"
    assert patch["kind"] == "ConfigMap" and patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"][key] == HEALTH_LUA
