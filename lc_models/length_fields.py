"""Config fields that bound or select, by length, what a query attends to.

A model can be exact in chunks up to some length and wrong past it: a sliding window, an
attention chunk, a top-k indexer, a compression block, a carried convolution. The load check
(``lc_models.verify``) must feed a probe longer than each such length, in chunks shorter than
it. This module says which config fields those are:

* ``CROSSED``: fields whose value is a length in tokens (or a count of keys) the probe crosses;
* ``SPANS``: products of fields that are a length too (16 top blocks of 128 keys: 2048);
* ``IGNORED``: fields whose names look length-like but do not shape attention by length
  (head counts, layer indices and periods, expert counts, dropouts), each with why;
* ``LAYER_KINDS``: the per-layer kinds (``layer_types`` and kin) and the fields bounding each,
  so that a refusal names the layers a length belongs to.

A field whose name matches ``LENGTH_LIKE`` and is in none of these is *unknown*: the check
crosses it too (see ``lengths``), and ``tests/test_length_fields.py`` fails until it is
sorted into a table, as it does for an unknown layer kind, for every decoder model type of
the installed transformers.

>>> from transformers import LlamaConfig
>>> lengths(LlamaConfig(sliding_window=None, vocab_size=64))
{}
>>> from transformers import Gemma3TextConfig
>>> lengths(Gemma3TextConfig(sliding_window=16))
{'sliding_window': 16}
"""

from __future__ import annotations

import dataclasses
import re

# Names that may hold a length that shapes attention (matched anywhere in the name).
LENGTH_LIKE = re.compile(
    r"window|chunk|top_?k|block|compress|stride|pool|ratio|rate|span|local|global|sparse|index"
    r"|segment|sink|radius|context|lookback|recent|dilat|band|page|cluster|bucket|landmark"
    r"|attn|attention|memory|length|interval|period|every|kernel|conv|cache",
    re.IGNORECASE,
)

# vocabulary ids, whatever their names say (``image_token_index``, ``boi_token_id``)
TOKEN_ID = re.compile(r"_(token_)?(id|ids|index)$")

# field -> what it bounds; the probe is longer than each value and fed in shorter chunks
CROSSED: dict[str, str] = {
    # local attention windows and attention chunks
    "sliding_window": "a local attention window",
    "sliding_window_size": "a local attention window",
    "attention_window_size": "a local attention window (RecurrentGemma)",
    "window_size": "a local attention window (GPT-Neo)",
    "local_attention": "a local attention window (ModernBERT decoder)",
    "local_attention_window_len": "a local attention window (BLT)",
    "keep_window_size": "the window kept unmasked before dynamic masking (Doge)",
    "attention_chunk_size": "chunked attention (Llama 4)",
    "local_attn_chunk_length": "local attention chunks (Reformer)",
    "lsh_attn_chunk_length": "LSH attention chunks (Reformer)",
    "block_size": "attention blocks (BigBird) or lightning-attention blocks (MiniMax)",
    "max_patch_length": "byte patches (BLT)",
    # learned sparse attention: indexers that select keys, compressed keys
    "index_topk": "keys (or compressed blocks) an indexer selects per query",
    "index_block_size": "keys per block an indexer scores",
    "index_topk_blocks": "blocks an indexer selects per query",
    "index_local_blocks": "blocks always kept before the query",
    "index_pool_size": "keys an indexer selects from",
    "index_compression": "keys an indexer averages into one summary",
    "index_num_local_tokens": "recent keys an indexer always keeps",
    "index_num_sink_tokens": "first keys an indexer always keeps",
    "indexer_budget": "keys an indexer selects per query",
    "indexer_compress_ratio": "keys an indexer averages into one block",
    "compress_rates": "keys compressed into one (per attention kind)",
    "centroid_intermediate_top_k": "centroids selected per query",
    # carried convolutions and scan chunks (their state crosses chunk boundaries)
    "chunk_size": "the chunk of a chunked scan (Mamba2, xLSTM)",
    "mamba_chunk_size": "the chunk of a chunked scan",
    "conv_kernel": "a causal convolution's width",
    "conv_kernel_size": "a causal convolution's width",
    "conv1d_width": "a causal convolution's width",
    "conv_L_cache": "a causal convolution's width (LFM2)",
    "mamba_d_conv": "a causal convolution's width",
    "linear_conv_kernel_dim": "a causal convolution's width",
    "short_conv_kernel_size": "a causal convolution's width",
    "ple_conv_kernel_size": "a causal convolution's width",
    "number_of_conv_states": "carried convolution states",
}

# products of fields that are lengths too (a count of blocks times the block's size; where the
# size is per kind, e.g. DeepSeek-V4's {"compressed_sparse_attention": 4, ...}, its smallest)
SPANS: tuple[tuple[str, str], ...] = (
    ("index_topk_blocks", "index_block_size"),
    ("index_local_blocks", "index_block_size"),
    ("index_topk", "compress_rates"),
    ("index_topk", "indexer_compress_ratio"),
    ("indexer_budget", "indexer_compress_ratio"),
    ("local_num_chunks_before", "local_attn_chunk_length"),
    ("lsh_num_chunks_before", "lsh_attn_chunk_length"),
)

# config fields listing each layer's kind
LAYER_KIND_FIELDS = ("layer_types", "layers_block_type", "block_types", "indexer_types",
                     "mlp_layer_types", "mtp_layers_block_type")
_WINDOWS = ("sliding_window", "sliding_window_size", "attention_window_size", "window_size",
            "local_attention", "local_attention_window_len")
# layer kind -> the fields bounding what a layer of that kind attends to; () for a kind that
# attends to the whole past, carries a recurrent state, or is no attention at all (an MLP)
LAYER_KINDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("full_attention", "full", "attention", "hybrid"), ()),
    **dict.fromkeys(("sliding_attention", "hybrid_sliding"), _WINDOWS),
    "chunked_attention": ("attention_chunk_size",),
    "indexed_attention": ("index_topk", "index_block_size", "index_topk_blocks",
                          "index_pool_size", "indexer_budget"),
    "compressed_sparse_attention": ("compress_rates", "index_topk"),
    "heavily_compressed_attention": ("compress_rates",),
    **dict.fromkeys(("linear_attention", "recurrent", "conv", "mamba"), ()),
    **dict.fromkeys(("dense", "sparse", "moe", "hash_moe", "mlp", "shared"), ()),
}

_HEADS = "a number of heads"
_DIM = "a width, not a length"
_LAYERS = "which layers are of which kind (the probe runs every layer)"
_EXPERTS = "mixture-of-experts routing, per token"
_DROPOUT = "a dropout rate or scale"
IGNORED: dict[str, str] = {
    **dict.fromkeys((
        "num_attention_heads", "attention_heads", "decoder_attention_heads",
        "encoder_attention_heads", "num_decoder_attention_heads", "num_encoder_attention_heads",
        "swa_num_attention_heads", "num_attention_heads_per_layer", "index_n_heads",
        "index_num_heads", "indexer_n_heads", "indexer_kv_heads", "cross_attn_k",
    ), _HEADS),
    **dict.fromkeys((
        "attention_head_dim", "attention_head_size", "attention_hidden_size", "index_head_dim",
        "indexer_head_dim", "cross_attention_hidden_size", "block_multiple_of",
        "block_ffn_dim_multiplier", "expansion_ratio", "query_pre_attn_scalar",
    ), _DIM),
    **dict.fromkeys((
        "attn_layer_indices", "attn_layer_offset", "attn_layer_period", "full_attn_idxs",
        "global_attention_every_n_layers", "global_attn_every_n_layers", "index_layers",
        "local_layer_ids", "mtp_local_layer_ids", "max_window_layers", "sliding_window_pattern",
        "prefix_dense_sliding_window_pattern", "no_rope_layer_interval", "cross_attention_layers",
        "n_layers_per_attn_res_block", "loop_layer_index_start", "loop_layer_index_end",
        "num_blocks", "num_dense_blocks", "num_mem_blocks", "num_ln_in_parallel_attn",
        "moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval",
        "decoder_sparse_step", "expert_layer_period",
    ), _LAYERS),
    **dict.fromkeys(("moe_topk", "top_k_experts", "topk_group", "num_local_experts"), _EXPERTS),
    **dict.fromkeys((
        "attention_dropout", "attn_pdrop", "attention_probs_dropout_prob",
        "local_attention_probs_dropout_prob", "attention_multiplier", "full_attn_alpha_factor",
        "full_attn_beta_factor", "linear_attn_alpha_factor", "linear_attn_beta_factor",
    ), _DROPOUT),
    "chunk_size_feed_forward": "the feed-forward computed in slices, per token (exact)",
    "chunk_size_lm_head": "the LM head computed in slices, per token (exact)",
    "max_inference_chunksize": "xLSTM's own slicing of long inputs "
                               "(lc_models/hf_runners/xlstm.py drives xLSTM, not the check)",
    "context_length": "RWKV's training length, not a bound on attention",
    "model_max_length": "the training length, not a bound on attention",
    "compress_rope_theta": "a RoPE base",
    "hc_sinkhorn_iters": "iterations of a per-token normalisation",
    "rescale_every": "RWKV's numeric rescaling every few layers",
    "num_buckets": "relative-position buckets (a bias computed from positions)",
    "position_bias_num_buckets": "relative-position buckets (a bias computed from positions)",
    "num_random_blocks": "BigBird's random blocks per query (counted in blocks of block_size)",
    "local_num_chunks_before": "a count of chunks (its span is in SPANS)",
    "local_num_chunks_after": "chunks after the query (0 in a causal model)",
    "lsh_num_chunks_before": "a count of chunks (its span is in SPANS)",
    "lsh_num_chunks_after": "chunks after the query (0 in a causal model)",
    "mask_feature_length": "a training-time mask length (SpecAugment)",
    "mask_time_length": "a training-time mask length (SpecAugment)",
    "mask_index": "a token id",
    "unk_index": "a token id",
    "segment_types": "a number of segment types (CPM-Ant)",
    "prompt_length": "a learned prompt's length, prepended to every input (CPM-Ant)",
}


def _numbers(value) -> list[int]:
    """The positive integers in a field: an int, a list or tuple of ints, or a dict's values."""
    if isinstance(value, dict):
        value = list(value.values())
    items = value if isinstance(value, (list, tuple)) else [value]
    return [v for v in items if isinstance(v, int) and not isinstance(v, bool) and v > 0]


def text_config(config):
    """The decoder's own config (a multimodal config holds it as its text config)."""
    text = getattr(config, "get_text_config", None)
    return text(decoder=True) if callable(text) else config


def _int_typed(cls) -> set[str]:
    """Fields a config dataclass declares as integers (set or not: ``int | None``)."""
    if not dataclasses.is_dataclass(cls):
        return set()
    return {f.name for f in dataclasses.fields(cls)
            if re.search(r"\bint\b", str(f.type)) and str(f.type) != "bool"}


def length_like(config) -> list[str]:
    """Names of the text config's integer fields (set, or declared ``int``) that look
    length-like, token ids aside. ``config`` may be a config class (its declared fields)."""
    if isinstance(config, type):
        names = _int_typed(config)
    else:
        config = text_config(config)
        names = _int_typed(type(config)) | {n for n, v in vars(config).items() if _numbers(v)}
    return sorted(n for n in names
                  if not n.startswith("_") and LENGTH_LIKE.search(n) and not TOKEN_ID.search(n))


def unknown_fields(config) -> list[str]:
    """Names of ``config``'s length-like fields that are in no table."""
    return [n for n in length_like(config) if n not in CROSSED and n not in IGNORED]


def layer_kinds(config) -> list[str]:
    """The kinds the text config gives its layers (``layer_types`` and kin), in order."""
    config = text_config(config)
    kinds = []
    for name in LAYER_KIND_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)):
            kinds += [k for k in value if isinstance(k, str)]
    return list(dict.fromkeys(kinds))


def kinds_bounded_by(config, names) -> list[str]:
    """The layer kinds of ``config`` that the fields ``names`` bound (for messages)."""
    wanted = {part for name in names for part in name.split("*")}
    return [k for k in layer_kinds(config) if wanted & set(LAYER_KINDS.get(k, ()))]


def lengths(config, unknown: bool = True) -> dict[str, int]:
    """Every length in ``config`` the probe must cross: ``{field or "a*b": tokens}``, the
    largest value of each ``CROSSED`` field (lists and dicts hold one per layer or kind), of
    each ``SPANS`` product, and with ``unknown`` of each field ``unknown_fields`` names."""
    config = text_config(config)
    found: dict[str, int] = {}
    for name in list(CROSSED) + (unknown_fields(config) if unknown else []):
        numbers = _numbers(getattr(config, name, None))
        if numbers:
            found[name] = max(numbers)
    for count, size in SPANS:
        counts, sizes = (_numbers(getattr(config, name, None)) for name in (count, size))
        if counts and sizes:
            found[f"{count}*{size}"] = max(counts) * min(sizes)
    return found
