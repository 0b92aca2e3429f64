"""The reserved KV layer (lc_models/kv_cache.py) against transformers' DynamicLayer."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.cache_utils import DynamicLayer

from lc_models.kv_cache import ReservedLayer
from lc_models.prefill import feed
from lc_models.state import CacheRunner


def _chunks(seed=0, sizes=(5, 1, 7, 3)):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 3, t, 4, generator=g), torch.randn(2, 3, t, 4, generator=g))
            for t in sizes]


@pytest.mark.parametrize("capacity", [0, 10, 16, 64])
def test_it_returns_what_dynamic_layer_returns(capacity):
    """Under, at and over the reservation: the same keys and values after every chunk."""
    ours, theirs = ReservedLayer(capacity), DynamicLayer()
    for k, v in _chunks():
        for a, b in zip(ours.update(k, v), theirs.update(k, v)):
            assert torch.equal(a, b)
        assert ours.get_seq_length() == theirs.get_seq_length()
        assert ours.get_mask_sizes(3) == theirs.get_mask_sizes(3)


@pytest.mark.parametrize("capacity", [0, 16])
def test_keys_and_values_of_different_shapes(capacity):
    """MLA models (DeepSeek-V2/V3, MiniCPM3, ...) cache a compressed latent as keys and a
    rotary part as values through the same update: (b, 1, t, 512) and (b, 1, t, 64) there."""
    g = torch.Generator().manual_seed(1)
    ours, theirs = ReservedLayer(capacity), DynamicLayer()
    for t in (5, 1, 7):
        k, v = torch.randn(2, 1, t, 8, generator=g), torch.randn(2, 1, t, 3, generator=g)
        for a, b in zip(ours.update(k, v), theirs.update(k, v)):
            assert torch.equal(a, b)


def test_a_reservation_is_allocated_once_and_written_in_place():
    layer = ReservedLayer(16)
    pointers = set()
    for k, v in _chunks():
        keys, _ = layer.update(k, v)
        pointers.add(keys.data_ptr())
        assert keys._base.shape[-2] == 16
    assert len(pointers) == 1  # one buffer for all 16 positions


def test_a_snapshot_never_writes_into_its_parents_buffer():
    parent = ReservedLayer(32)
    (k0, v0), (k1, v1), (k2, v2) = _chunks(sizes=(6, 4, 4))[:3]
    parent.update(k0, v0)
    child = ReservedLayer(32)
    child.is_initialized, child.keys, child.values = True, parent.keys, parent.values
    child.reorder_cache(torch.tensor([1, 0]))  # what CacheState.select does
    child.update(k1, v1)
    before = parent.keys.clone()
    keys, _ = parent.update(k2, v2)
    assert torch.equal(keys[..., :6, :], before)
    assert torch.equal(keys[..., 6:, :], k2)  # not the child's k1
    assert torch.equal(child.keys[..., 6:, :], k1)
    assert torch.equal(child.keys[..., :6, :], before[[1, 0]])


def _prefilled(capacity=32, n=6):
    """A cache of one ReservedLayer holding ``n`` positions of a reservation, in a CacheState."""
    from transformers import DynamicCache

    from lc_models.state import CacheState

    cache = DynamicCache()
    cache.layers = [ReservedLayer(capacity)]
    (k, v), = _chunks(sizes=(n,))
    cache.layers[0].update(k, v)
    return CacheState(cache, n, 2)


def test_a_snapshot_keeping_its_rows_shares_the_buffer():
    parent = _prefilled()
    child = parent.select([0, 1])
    p, c = parent.cache.layers[0], child.cache.layers[0]
    assert c.buffer is p.buffer and c.keys.data_ptr() == p.keys.data_ptr(), "copied"


@pytest.mark.parametrize("first", ["child", "parent"])
def test_shared_snapshots_never_see_each_others_writes(first):
    """Whichever of the two appends first writes in place; the other copies its prefix."""
    parent = _prefilled()
    child = parent.select([0, 1])
    p, c = parent.cache.layers[0], child.cache.layers[0]
    prefix = p.keys.clone()
    (k1, v1), (k2, v2) = _chunks(seed=1, sizes=(3, 5))
    writes = {"child": (c, k1, v1), "parent": (p, k2, v2)}
    order = [first, "parent" if first == "child" else "child"]
    pointers = {}
    for who in order:
        layer, k, v = writes[who]
        keys, _ = layer.update(k, v)
        pointers[who] = keys.data_ptr()
    assert pointers[order[0]] != pointers[order[1]], "both wrote into one buffer"
    assert torch.equal(c.keys[..., :6, :], prefix) and torch.equal(c.keys[..., 6:, :], k1)
    assert torch.equal(p.keys[..., :6, :], prefix) and torch.equal(p.keys[..., 6:, :], k2)
    assert torch.equal(c.values[..., 6:, :], v1) and torch.equal(p.values[..., 6:, :], v2)


def test_the_first_to_append_after_a_shared_snapshot_writes_in_place():
    parent = _prefilled()
    child = parent.select([0, 1])
    c = child.cache.layers[0]
    before = c.keys.data_ptr()
    (k, v), = _chunks(seed=2, sizes=(4,))
    keys, _ = c.update(k, v)
    assert keys.data_ptr() == before, "the snapshot copied although it appended first"


def test_other_row_selections_copy():
    parent = _prefilled()
    for rows in ([1, 0], [0], [0, 0, 1]):
        child = parent.select(rows)
        c, p = child.cache.layers[0], parent.cache.layers[0]
        assert c.keys.data_ptr() != p.keys.data_ptr()
        assert torch.equal(c.keys, p.keys[rows])


def test_chunked_prefill_with_a_reservation_equals_the_full_forward(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama")).eval()
    runner = CacheRunner(model)
    ids = [[5 + (i * 7) % 90 for i in range(50)]]
    with torch.no_grad():
        full = model(torch.tensor(ids)).logits[0]
    chunks = []
    state = runner.new_state(1)
    state.reserve(50)
    feed(runner, ids, state, chunk_size=7, on_chunk=lambda rows, start, lg: chunks.append(lg))
    assert isinstance(state.cache.layers[0], ReservedLayer)
    assert (torch.cat(chunks, 1)[0] - full).abs().max() < 1e-4


def test_mamba_ssm_attention_layers_use_the_reservation():
    """MixerLM's MHA layers: one buffer of the reserved size, written in place, same logits."""
    from lc_models.models.mixer_model import AttnConfig, AttnLayer, MixerConfig, MixerLM

    torch.manual_seed(0)
    cfg = MixerConfig(d_model=16, n_layer=2, vocab_size=32, attn_layer_idx=(1,),
                      attn=AttnConfig(num_heads=2, head_dim=8, d_conv=4, rotary_emb_dim=4),
                      d_intermediate=32, ssm_layer="Mamba2",
                      ssm_hf={"state_size": 4, "head_dim": 4, "num_heads": 8, "n_groups": 1,
                              "expand": 2, "conv_kernel": 4})
    model = MixerLM(cfg).eval()
    ids = torch.randint(0, 32, (1, 40), generator=torch.Generator().manual_seed(1))
    full = model.prefill(ids, model.new_state(1))
    state = model.new_state(1)
    state.reserve(40)
    pointers, parts = set(), []
    for s in range(0, 40, 7):
        parts.append(model.prefill(ids[:, s : s + 7], state))
        state.n_tokens += ids[:, s : s + 7].shape[1]
        layer = state.layers[1]
        assert isinstance(layer, AttnLayer) and layer.kv.keys.shape[-2] == 40
        pointers.add(layer.k.data_ptr())
    assert len(pointers) == 1, "the KV buffer was reallocated"
    assert (torch.cat(parts, 1) - full).abs().max() < 1e-5


def test_mamba_ssm_snapshots_keeping_their_rows_share_the_kv_buffer():
    """A context's state handed to its continuation: no copy of the KV cache; the two never
    see each other's writes; other row selections copy."""
    from lc_models.models.mixer_model import AttnConfig, MixerConfig, MixerLM

    torch.manual_seed(0)
    cfg = MixerConfig(d_model=16, n_layer=1, vocab_size=32, attn_layer_idx=(0,),
                      attn=AttnConfig(num_heads=2, head_dim=8))
    model = MixerLM(cfg).eval()
    ids = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(1))
    state = model.new_state(2)
    state.reserve(20)
    model.prefill(ids[:, :8], state)
    state.n_tokens = 8
    child = state.select([0, 1])
    assert child.layers[0].k.data_ptr() == state.layers[0].k.data_ptr(), "copied"
    expected = model.prefill(ids[:, 8:], state.select([0, 1]).select([0, 1]))  # parent's path
    parent_keys = state.layers[0].k.clone()
    got = model.prefill(ids[:, 8:], child)  # writes in place after the shared prefix
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(state.layers[0].k, parent_keys), "the parent's view changed"
    moved = state.select([1, 0])
    assert moved.layers[0].k.data_ptr() != state.layers[0].k.data_ptr()
    assert torch.equal(moved.layers[0].k, state.layers[0].k[[1, 0]])
