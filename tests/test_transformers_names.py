"""Every transformers-internal name lc-eval relies on, checked against the installed release.

transformers renames internal classes between minor releases (5.25 renamed
``MambaRMSNormGated`` to ``Mamba2RMSNormGated``). A moved import fails only where it is used,
and a class matched by name (``type(m).__name__ == "Mamba2Mixer"``) turns its fast path off
silently: a slowdown nobody sees. Each test here fails with a message that names the class,
its module and what in lc-eval uses it, so that the fix is one lookup in the new release.

``NAMES`` is the inventory (``grep -rn "from transformers" lc_models tests benchmarks`` and the
name matches in ``lc_models/hf_runners`` and ``lc_models/ops``); the tests below build tiny models
and check that each fast path that matches a class by name or attribute still engages.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import transformers

VERSION = transformers.__version__
T = "transformers"
MODELING = "transformers.models.{0}.modeling_{0}"

# (module, name, used by). "A|B": either name (a rename we already follow); "Class.attr": an
# attribute of the class. Keep it sorted by module.
NAMES: list[tuple[str, str, str]] = [
    (T, "AttentionInterface", "lc_models/hf_runners/lc_sdpa.py (registers lc_sdpa)"),
    (T, "AutoModelForCausalLM", "lc_models/zoo/tiny.py, lc_models/models/mamba_ssm.py"),
    (T, "AutoTokenizer", "lc_tasks/tokenizer.py, tests"),
    (T, "DynamicCache", "lc_models/state.py (CacheRunner)"),
    (T, "PretrainedConfig", "lc_models/models/mixer_model.py, rwkv6.py"),
    (T, "PreTrainedTokenizer", "lc_models/models/rwkv_world.py"),
    (T, "PreTrainedTokenizerFast", "lc_models/zoo/tiny.py (test tokenizers)"),
    *((T, name, "lc_models/generate.py (sampling)") for name in (
        "LogitsProcessorList", "MinPLogitsWarper", "RepetitionPenaltyLogitsProcessor",
        "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper")),
    *((T, name, "lc_models/zoo/tiny.py (the tiny test models)") for name in (
        "BambaConfig", "FalconMambaConfig", "GPT2Config", "GPTNeoXConfig", "JambaConfig",
        "Lfm2Config", "LlamaConfig", "Mamba2Config", "MambaConfig", "MiniMaxConfig",
        "MistralConfig", "Qwen3NextConfig", "RecurrentGemmaConfig", "RwkvConfig",
        "Zamba2Config", "xLSTMConfig")),
    ("transformers.activations", "SiLUActivation",
     "lc_models/models/mamba_mixer.py _conv (matched by name: SiLU fused into the conv)"),
    ("transformers.cache_utils", "DynamicLayer", "lc_models/kv_cache.py"),
    *(("transformers.cache_utils", f"DynamicCache.{method}",
       "lc_models/hf_runners/mamba.py, mamba2.py, recurrent_gemma.py (state in and out)")
      for method in ("get_conv_state", "update_conv_state", "get_recurrent_state",
                     "update_recurrent_state")),
    ("transformers.integrations.sdpa_attention", "sdpa_attention_forward",
     "lc_models/hf_runners/lc_sdpa.py"),
    ("transformers.masking_utils", "AttentionMaskInterface", "lc_models/hf_runners/lc_sdpa.py"),
    ("transformers.masking_utils", "sdpa_mask", "lc_models/hf_runners/lc_sdpa.py"),
    ("transformers.modeling_outputs", "CausalLMOutput", "lc_models/models/stateful.py"),
    ("transformers.modeling_utils", "ALL_ATTENTION_FUNCTIONS", "benchmarks/profile_prefill.py"),
    (MODELING.format("llama"), "LlamaRMSNorm",
     "lc_models/ops/rms_norm.py PLAIN_RMS_NORMS (matched by name: native RMS norm)"),
    (MODELING.format("mamba"), "MambaMixer", "lc_models/models/mixer_model.py"),
    (MODELING.format("mamba"), "MambaRMSNorm",
     "lc_models/ops/rms_norm.py PLAIN_RMS_NORMS (matched by name: native RMS norm)"),
    (MODELING.format("mamba2"), "Mamba2Mixer",
     "lc_models/hf_runners/mamba2.py (matched by name: the chunked SSD path), mixer_model.py"),
    (MODELING.format("mamba2"), "Mamba2RMSNorm",
     "lc_models/ops/rms_norm.py PLAIN_RMS_NORMS (matched by name: native RMS norm)"),
    (MODELING.format("mamba2"), "Mamba2RMSNormGated|MambaRMSNormGated",
     "tests/test_rms_norm.py (the oracle of gated_rms_norm)"),
    (MODELING.format("mamba2"), "mamba2_chunk_scan", "tests/test_ssd.py (the oracle of ssd)"),
    (MODELING.format("minimax"), "MiniMaxCache", "lc_models/hf_runners/minimax.py"),
    (MODELING.format("recurrent_gemma"), "RecurrentGemmaRecurrentBlock",
     "lc_models/hf_runners/recurrent_gemma.py, tests/test_linear_scan.py"),
    (MODELING.format("recurrent_gemma"), "RecurrentGemmaRglru",
     "lc_models/hf_runners/recurrent_gemma.py, tests/test_linear_scan.py"),
    (MODELING.format("recurrent_gemma"), "RecurrentGemmaRglru._rnn_scan",
     "lc_models/hf_runners/recurrent_gemma.py (replaced on the instance: the linear-scan path)"),
    (MODELING.format("xlstm"), "xLSTMCache", "lc_models/hf_runners/xlstm.py"),
]


def resolve(module: str, name: str):
    """The object ``module.name`` (``name`` may be ``Class.attr``), or None where missing."""
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return None
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@pytest.mark.parametrize("module,name,used_by", NAMES, ids=[n for _, n, _ in NAMES])
def test_the_name_exists_in_the_installed_transformers(module, name, used_by):
    found = [n for n in name.split("|") if resolve(module, n) is not None]
    assert found, (f"transformers {VERSION} has no {module}.{name.replace('|', ' or ')}; "
                   f"{used_by} relies on it: find its new name and update both")


def test_every_class_matched_by_name_is_in_the_table():
    from lc_models.ops.rms_norm import PLAIN_RMS_NORMS

    listed = {n for _, name, _ in NAMES for n in name.split("|")}
    missing = sorted({*PLAIN_RMS_NORMS, "Mamba2Mixer", "SiLUActivation"} - listed)
    assert not missing, f"matched by name in lc_models but not checked here: {missing}"


def test_the_model_types_we_fix_exist():
    from transformers import CONFIG_MAPPING

    from lc_models.hf_runners import FIXES, GENERIC_EXACT

    missing = sorted(t for t in {*FIXES, *GENERIC_EXACT} if t not in CONFIG_MAPPING)
    assert not missing, (f"transformers {VERSION} has no model_type {missing}: hf_runners' "
                         "FIXES / GENERIC_EXACT would no longer route those models")


def tiny(arch: str, **overrides):
    from transformers import AutoModelForCausalLM

    from lc_models.zoo.tiny import tiny_config

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(arch, 64, **overrides)).eval()


@pytest.mark.parametrize("arch", ["llama", "mamba", "mamba2"])
def test_the_native_rms_norm_finds_the_model_norms(arch, monkeypatch):
    from lc_models.ops import native, rms_norm

    monkeypatch.setattr(native, "available", lambda: True)  # the match, not the kernel
    model = tiny(arch)
    norms = sorted({type(m).__name__ for m in model.modules() if "RMSNorm" in type(m).__name__
                    and "Gated" not in type(m).__name__})
    assert rms_norm.patch(model) > 0, (
        f"transformers {VERSION}: no {arch} norm matched PLAIN_RMS_NORMS "
        f"{rms_norm.PLAIN_RMS_NORMS} with a variance_epsilon (the model has {norms}): the "
        "native RMS norm is off; add the new class name")


@pytest.mark.parametrize("arch,module", [
    ("mamba", "mamba"), ("falcon_mamba", "mamba"), ("jamba", "mamba"), ("mamba2", "mamba2")])
def test_the_mixer_fast_path_finds_the_mixers(arch, module):
    patch = importlib.import_module(f"lc_models.hf_runners.{module}").patch
    model = tiny(arch)
    mixers = sorted({type(m).__name__ for m in model.modules() if "Mixer" in type(m).__name__})
    assert patch(model) > 0, (f"transformers {VERSION}: hf_runners/{module}.py patched no "
                              f"mixer of {arch} (its mixers: {mixers})")


@pytest.mark.parametrize("arch", ["mamba", "mamba2"])
def test_the_conv_fuses_the_mixer_silu(arch, monkeypatch):
    from lc_models.models import mamba_mixer

    seen = []

    def spy(x, weight, bias, state, activation=None, out_dtype=None):
        seen.append(activation)
        return x, state

    monkeypatch.setattr(mamba_mixer, "causal_conv1d", spy)
    mixer = next(m for m in tiny(arch).modules() if type(m).__name__.endswith("Mixer"))
    mamba_mixer._conv(mixer, torch.zeros(1, 3, mixer.conv1d.weight.shape[0]), None)
    assert seen == ["silu"], (f"transformers {VERSION}: the {arch} mixer's activation "
                              f"{type(mixer.act).__name__} is not recognised as SiLU, so the "
                              "conv runs unfused (lc_models/models/mamba_mixer.py _conv)")


def test_the_gated_norm_runs_fused(monkeypatch):
    from lc_models.models import mamba_mixer

    calls = []
    monkeypatch.setattr(mamba_mixer, "gated_rms_norm", lambda *a, **k: calls.append(a) or a[0])
    norm = next(m for m in tiny("mamba2").modules() if type(m).__name__.endswith("Mixer")).norm
    y = torch.zeros(1, 2, norm.weight.shape[0])
    mamba_mixer._gated_norm(norm, y, y)
    assert calls, (f"transformers {VERSION}: {type(norm).__name__} lacks group_size or "
                   "variance_epsilon, so models/mamba_mixer.py _gated_norm falls back to "
                   "the module's own, slower forward")


def test_the_recurrent_gemma_scan_is_ours(monkeypatch):
    from lc_models.hf_runners import recurrent_gemma

    calls = []
    scan = recurrent_gemma.linear_scan
    monkeypatch.setattr(recurrent_gemma, "linear_scan",
                        lambda *a: calls.append(1) or scan(*a))
    model = tiny("recurrent_gemma")
    assert recurrent_gemma.patch(model) > 0, "no RecurrentGemma recurrent block was patched"
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3, 4, 5]]))
    assert calls, (f"transformers {VERSION}: RecurrentGemmaRglru no longer calls _rnn_scan, so "
                   "lc_models/hf_runners/recurrent_gemma.py's linear scan never runs")


def test_sdpa_attention_is_switched_to_ours():
    from lc_models.hf_runners import lc_sdpa as attention

    model = tiny("llama", attn_implementation="sdpa")
    assert attention.patch(model), (
        f"transformers {VERSION}: a llama model with sdpa attention was not switched to "
        f"{attention.NAME} (config._attn_implementation or set_attn_implementation moved)")
