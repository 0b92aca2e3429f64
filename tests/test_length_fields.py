"""The load check sees every length in a config that shapes attention: each decoder type of
the installed transformers has its length-like fields sorted into ``lc_models.length_fields``'
tables, and the check's probes cross each of them in shorter chunks."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_sparse
from huggingface_hub.errors import StrictDataclassError
from transformers import CONFIG_MAPPING, AutoModelForCausalLM
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.utils import logging as hf_logging

from lc_models import length_fields
from lc_models.hf_runners import lc_sdpa as attention
from lc_models.hf_runners import runner_for
from lc_models.verify import GROUP_RATIO, chunked_error, probes
from lc_tasks.errors import UsageError


def decoder_config(model_type):
    """A default config of ``model_type`` (its class where the defaults do not validate)."""
    cls = CONFIG_MAPPING[model_type]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return cls()
    except (StrictDataclassError, ValueError, TypeError):  # e.g. gemma4_assistant's defaults fail its own validator
        return cls
    finally:
        hf_logging.set_verbosity(verbosity)


def test_every_length_like_field_of_every_decoder_type_is_known():
    unknown = {}
    for model_type in sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES):
        names = [n for n in length_fields.length_like(decoder_config(model_type))
                 if n not in length_fields.CROSSED and n not in length_fields.IGNORED]
        if names:
            unknown[model_type] = names
    assert not unknown, (
        f"config fields that look like lengths are in no table of lc_models/length_fields.py: "
        f"{unknown}; add each to CROSSED (the load check crosses it) or IGNORED (with why)")


def test_the_walk_sees_the_fields_it_should():
    """The walk is not vacuous: it finds the kinds named in issue 34 in real config types."""
    seen = {n for t in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            for n in length_fields.length_like(decoder_config(t))}
    for name in ("sliding_window", "attention_chunk_size", "index_topk", "compress_rates",
                 "conv_kernel"):
        assert name in seen


def test_no_field_is_both_crossed_and_ignored():
    assert not set(length_fields.CROSSED) & set(length_fields.IGNORED)
    for pair in length_fields.SPANS:
        assert all(n in length_fields.CROSSED or n in length_fields.IGNORED for n in pair)


@pytest.mark.parametrize("overrides, crossed", [
    ({"sliding_window": 40}, {"sliding_window": 40}),
    ({"sliding_window": 40, "index_topk": 8}, {"sliding_window": 40, "index_topk": 8}),
    ({"sliding_window": 4096, "conv_kernel": 4}, {"sliding_window": 4096, "conv_kernel": 4}),
    ({"index_topk_blocks": 4, "index_block_size": 16},
     {"index_topk_blocks": 4, "index_block_size": 16, "index_topk_blocks*index_block_size": 64}),
    ({"compress_rates": {"a": 4, "b": 128}, "index_topk": 8},
     {"compress_rates": 128, "index_topk": 8, "index_topk*compress_rates": 32}),
    ({"my_new_sparse_window": 50}, {"my_new_sparse_window": 50}),  # unknown: crossed too
    ({"number_of_conv_states": 1, "conv_kernel": 4}, {"number_of_conv_states": 1,
                                                      "conv_kernel": 4}),
], ids=["window", "window and top-k", "far apart", "blocks", "compression", "unknown field",
        "a length of one"])
def test_each_probe_crosses_its_lengths_in_shorter_chunks(overrides, crossed):
    from transformers import LlamaConfig

    config = LlamaConfig(vocab_size=64, **overrides)
    plan = probes(config)
    assert {k: v for p in plan for k, v in p.crosses.items()} == crossed
    for probe in plan:
        for name, value in probe.crosses.items():
            assert probe.length > value, f"{name}={value} not crossed by {probe}"
            assert probe.chunk < value or value < 2, f"{name}={value}: chunks of {probe.chunk}"
            assert probe.chunk % 2 == 1
        assert probe.chunk > 1 or min(probe.crosses.values()) == 2, f"{probe}: chunks of 1"
        assert probe.length / probe.chunk <= 2 * GROUP_RATIO + 12, f"{probe} costs too much"


@pytest.mark.skipif("deepseek_v32" not in CONFIG_MAPPING, reason="no DeepSeek-V3.2 here")
def test_a_model_that_tests_the_attention_name_keeps_stock_sdpa():
    """DeepSeek-V3.2 applies its top-k mask only when its implementation is named "eager" or
    "sdpa": renamed to lc_sdpa it attended densely (0.43 nats off stock hf, issue 34)."""
    model = tiny_sparse()
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        stock = model(ids).logits
        assert not attention.patch(model)
        assert model.config._attn_implementation == "sdpa"
        assert torch.equal(model(ids).logits, stock)


@pytest.mark.skipif("deepseek_v32" not in CONFIG_MAPPING, reason="no DeepSeek-V3.2 here")
def test_a_sparse_model_is_exact_or_refused_naming_its_top_k():
    """A random indexer scores many keys 0 (a ReLU), and top-k among ties depends on how many
    keys there are: stock hf's own forward over 32 tokens differs from its forward over 64 at
    position 17. So this model is refused, naming the field; it is never run inexactly."""
    model = tiny_sparse(index_topk=8)
    try:
        runner = runner_for(model)
    except UsageError as err:
        assert "past index_topk=8" in str(err) and "\n" not in str(err)
        return
    assert chunked_error(runner, length=64, chunk=16) <= 1e-4


def test_a_test_against_eager_alone_keeps_lc_sdpa(tiny_model):
    """GPT-2's code asks `_attn_implementation == "eager"`: the same answer for sdpa and
    lc_sdpa, so it is still switched (only a test naming "sdpa" keeps stock sdpa)."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model("gpt2"), attn_implementation="sdpa")
    assert not attention.branches_on_name(model)
    assert attention.patch(model)


def test_every_layer_kind_of_every_decoder_type_is_known():
    unknown = {}
    for model_type in sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES):
        config = decoder_config(model_type)
        if isinstance(config, type):
            continue
        kinds = [k for k in length_fields.layer_kinds(config) if k not in length_fields.LAYER_KINDS]
        if kinds:
            unknown[model_type] = kinds
    assert not unknown, (f"layer kinds in no table of lc_models/length_fields.py: {unknown}; "
                         "add each to LAYER_KINDS with the fields that bound it")
    bounds = {f for fields in length_fields.LAYER_KINDS.values() for f in fields}
    assert bounds <= set(length_fields.CROSSED), bounds - set(length_fields.CROSSED)


@pytest.mark.skipif("qwen4_exp_text" not in CONFIG_MAPPING, reason="no Qwen4-Exp here")
def test_a_sparse_model_without_ties_runs_exactly():
    """Qwen4-Exp's QSA indexer (a budget of 8 tokens from blocks of 4) under lc_hf in chunks of
    16: the logits of stock hf's full forward (a copy never patched), greedy tokens the same."""
    import copy

    from lc_models.prefill import feed

    config = CONFIG_MAPPING["qwen4_exp_text"](
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, indexer_n_heads=2,
        indexer_kv_heads=1, indexer_head_dim=8, indexer_budget=8, indexer_compress_ratio=4,
        layer_types=["linear_attention", "full_attention"], linear_num_key_heads=2,
        linear_num_value_heads=2, linear_key_head_dim=8, linear_value_head_dim=8)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    stock = copy.deepcopy(model)
    ids = torch.randint(3, 128, (1, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = stock(ids).logits
    runner = runner_for(model)  # the load check crosses indexer_budget*indexer_compress_ratio
    chunks = []
    feed(runner, [ids[0].tolist()], runner.new_state(1), 16,
         on_chunk=lambda rows, start, logits: chunks.append(logits))
    got = torch.cat(chunks, 1)
    assert (got - want).abs().max() / want.abs().max() <= 1e-4
    assert torch.equal(got.argmax(-1), want.argmax(-1))
