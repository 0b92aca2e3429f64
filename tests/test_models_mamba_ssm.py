"""Native mamba_ssm checkpoints load through lc_hf and compute what mamba_ssm computes.

The tests write tiny checkpoints in mamba_ssm's own format (its config.json keys, ``backbone.*``
weights in pytorch_model.bin, shapes from mamba_ssm's module definitions, no tokenizer) and
compare lc_hf with independent references on the raw weights:

* a one-pass functional re-implementation of mamba_ssm's forward (``reference_logits``):
  Mamba1/Mamba2 scans token by token, attention as an explicit softmax over a causal mask,
  rotary as complex multiplication;
* transformers' own ``Mamba2Mixer`` for the SSM layers of Mamba2-Attn, and transformers'
  ``LlamaForCausalLM`` for a Transformer++ whose config Llama can express.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import transformers
from lm_eval.api.instance import Instance

from lc_models.adapter import LongContextLM
from lc_models.models import mamba_ssm
from lc_models.zoo.tiny import build_tokenizer
from lc_models.zoo.tiny_native import MAMBA_SSM_CONFIGS, save_mamba_ssm

TEXT = "There is an important info hidden inside a lot of irrelevant text. The pass key is 98765."
PURE = {"mamba1": "MambaForCausalLM", "mamba2": "Mamba2ForCausalLM"}
HYBRIDS = ["mamba2attn", "transformerpp", "every_field"]


def write(path, kind, **extra):
    """A tiny random checkpoint of ``kind`` (with ``extra`` config fields); (config, state)."""
    config = {**MAMBA_SSM_CONFIGS[kind], "vocab_size": len(build_tokenizer("char")), **extra}
    return config, save_mamba_ssm(path, config)


# ---- mamba_ssm's forward pass, written from its definition, on the raw weights ----
def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def conv(x, w, b):  # x (L, C) -> (L, C), depthwise causal, no activation
    return F.conv1d(x.T[None], w, b, padding=w.shape[-1] - 1, groups=x.shape[1])[0, :, : len(x)].T


def mamba1_mixer(x, w, ssm):  # x (L, d)
    inner = w["in_proj.weight"].shape[0] // 2
    n = w["A_log"].shape[1]
    xs, z = (x @ w["in_proj.weight"].T).split(inner, -1)
    xs = F.silu(conv(xs, w["conv1d.weight"], w["conv1d.bias"]))
    dt, B, C = (xs @ w["x_proj.weight"].T).split([w["dt_proj.weight"].shape[1], n, n], -1)
    dt = F.softplus(dt @ w["dt_proj.weight"].T + w["dt_proj.bias"])  # (L, inner)
    A, h, ys = -w["A_log"].exp(), torch.zeros(inner, n), []
    for t in range(len(x)):
        h = torch.exp(dt[t, :, None] * A) * h + (dt[t] * xs[t])[:, None] * B[t]
        ys.append(h @ C[t] + w["D"] * xs[t])
    return (torch.stack(ys) * F.silu(z)) @ w["out_proj.weight"].T


def mamba2_mixer(x, w, ssm):
    heads, n, groups, p = w["A_log"].shape[0], ssm["d_state"], ssm["ngroups"], ssm["headdim"]
    inner = heads * p
    z, xbc, dt = (x @ w["in_proj.weight"].T).split([inner, inner + 2 * groups * n, heads], -1)
    xs, B, C = F.silu(conv(xbc, w["conv1d.weight"], w["conv1d.bias"])).split(
        [inner, groups * n, groups * n], -1
    )
    dt = F.softplus(dt + w["dt_bias"])  # (L, heads)
    rep = heads // groups  # heads per group
    B = B.view(len(x), groups, n).repeat_interleave(rep, 1)  # (L, heads, n)
    C = C.view(len(x), groups, n).repeat_interleave(rep, 1)
    xs = xs.view(len(x), heads, p)
    A, h, ys = -w["A_log"].exp(), torch.zeros(heads, p, n), []
    for t in range(len(x)):
        h = (
            torch.exp(dt[t] * A)[:, None, None] * h
            + (dt[t, :, None] * xs[t])[..., None] * B[t, :, None]
        )
        ys.append((h @ C[t][..., None])[..., 0] + w["D"][:, None] * xs[t])
    y = torch.stack(ys).reshape(len(x), inner) * F.silu(z)
    y = rms(y.view(len(x), groups, -1), 1.0).reshape(len(x), inner) * w["norm.weight"]
    return y @ w["out_proj.weight"].T


def transformers_mamba2_mixer(x, w, ssm):
    """transformers' own Mamba2Mixer (its stock forward) holding these weights."""
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    d = x.shape[-1]
    cfg = Mamba2Config(hidden_size=d, num_hidden_layers=1, state_size=ssm["d_state"],
                       head_dim=ssm["headdim"], num_heads=2 * d // ssm["headdim"],
                       n_groups=ssm["ngroups"], chunk_size=ssm["chunk_size"],
                       layer_norm_epsilon=1e-5)
    mixer = Mamba2Mixer(cfg, layer_idx=0)
    mixer.load_state_dict(w, strict=True)
    with torch.no_grad():
        return mixer(x[None])[0]


def rotate(x, dim, base, interleaved, positions):  # x (L, heads, head_dim)
    """Rotary as complex multiplication of channel pairs (independent of our rotate-half)."""
    freq = 1.0 / base ** (torch.arange(0, dim, 2).float() / dim)  # (dim / 2,)
    turn = torch.polar(torch.ones(len(positions), dim // 2), positions[:, None] * freq)[:, None]
    part = x[..., :dim]
    if interleaved:
        pairs = torch.view_as_complex(part.reshape(*part.shape[:-1], dim // 2, 2).contiguous())
        out = torch.view_as_real(pairs * turn).flatten(-2)
    else:
        pairs = torch.complex(part[..., : dim // 2], part[..., dim // 2 :])
        rotated = pairs * turn
        out = torch.cat([rotated.real, rotated.imag], -1)
    return torch.cat([out, x[..., dim:]], -1)


def mha(x, w, a):  # x (L, d), mamba_ssm MHA, causal
    L, heads = len(x), a["num_heads"]
    kv, dh = a.get("num_heads_kv") or heads, a["head_dim"]
    qkv_dim = dh * (heads + 2 * kv)
    proj = x @ w["in_proj.weight"].T + w.get("in_proj.bias", 0)
    qkv, mlp = proj[:, :qkv_dim], proj[:, qkv_dim:]
    if a.get("d_conv"):
        qkv = conv(qkv, w["conv1d.weight"], w["conv1d.bias"])
    q, k, v = qkv.split([heads * dh, kv * dh, kv * dh], -1)
    q, k, v = q.view(L, heads, dh), k.view(L, kv, dh), v.view(L, kv, dh)
    if a.get("rotary_emb_dim"):
        args = (a["rotary_emb_dim"], a.get("rotary_emb_base", 10000.0),
                a.get("rotary_emb_interleaved", False), torch.arange(L).float())
        q, k = rotate(q, *args), rotate(k, *args)
    k, v = k.repeat_interleave(heads // kv, 1), v.repeat_interleave(heads // kv, 1)
    scores = torch.einsum("qhd,khd->hqk", q, k) * (a.get("softmax_scale") or dh**-0.5)
    scores = scores.masked_fill(torch.ones(L, L).triu(1).bool(), float("-inf"))
    out = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(L, heads * dh)
    if mlp.shape[1]:
        up, gate = mlp.chunk(2, -1)
        out = torch.cat([out, up * F.silu(gate)], -1)
    return out @ w["out_proj.weight"].T + w.get("out_proj.bias", 0)


def reference_logits(config, state, ids, ssm_mixer=None):
    """mamba_ssm's MambaLMHeadModel over ``ids`` (L,), in float32, one pass."""
    ssm = config["ssm_cfg"] or {}
    ssm_mixer = ssm_mixer or (mamba2_mixer if ssm.get("layer") == "Mamba2" else mamba1_mixer)
    h = state["backbone.embedding.weight"][ids]
    for i in range(config["n_layer"]):
        p = f"backbone.layers.{i}."
        w = {k[len(p) + 6 :]: v for k, v in state.items() if k.startswith(p + "mixer.")}
        if i in config["attn_layer_idx"]:
            h = h + mha(rms(h, state[p + "norm.weight"]), w, config["attn_cfg"])
        else:
            h = h + ssm_mixer(rms(h, state[p + "norm.weight"]), w, ssm)
        if config.get("d_intermediate"):
            y, gate = (rms(h, state[p + "norm2.weight"]) @ state[p + "mlp.fc1.weight"].T).chunk(2, -1)
            h = h + (y * F.silu(gate)) @ state[p + "mlp.fc2.weight"].T
    return rms(h, state["backbone.norm_f.weight"]) @ state["lm_head.weight"].T


def rolling(lm, text=TEXT):
    (got,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    return got


def expected_rolling(lm, logits_of, text=TEXT):
    tokens = lm.tok_encode(text)
    ids = torch.tensor([lm.prefix_token_id, *tokens[:-1]])
    logprobs = logits_of(ids).log_softmax(-1)
    return float(logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].double().sum())


def load(path, tokenizer_dir, chunk_size=7):
    return LongContextLM(pretrained=str(path), tokenizer=str(tokenizer_dir("char")),
                         chunk_size=chunk_size, device="cpu", dtype="float32")


@pytest.mark.parametrize("kind", sorted(PURE))
def test_pure_ssm_checkpoint_converts_to_transformers_and_matches(kind, tmp_path, tokenizer_dir):
    config, state = write(tmp_path, kind)
    lm = load(tmp_path, tokenizer_dir)
    assert type(lm.model).__name__ == PURE[kind]
    want = expected_rolling(lm, lambda ids: reference_logits(config, state, ids))
    assert rolling(lm) == pytest.approx(want, abs=1e-3), kind


@pytest.mark.parametrize("chunk_size", [1, 7, 64], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("kind", HYBRIDS)
def test_hybrid_checkpoint_computes_what_mamba_ssm_computes(kind, chunk_size, tmp_path,
                                                            tokenizer_dir):
    config, state = write(tmp_path, kind)
    lm = load(tmp_path, tokenizer_dir, chunk_size)
    assert type(lm.model).__name__ == "MixerLM"
    ids = torch.tensor(lm.tok_encode(TEXT))
    want = reference_logits(config, state, ids)
    runner, st, pieces = lm.runner, lm.runner.new_state(1), []
    for start in range(0, len(ids), chunk_size):
        logits, st = runner.prefill(ids[None, start : start + chunk_size], st)
        pieces.append(logits[0])
    got = torch.cat(pieces)
    error = ((got - want).abs().max() / want.abs().max()).item()
    assert error < 1e-5, f"{kind}: chunked logits differ from mamba_ssm's by {error:.1e}"
    assert rolling(lm) == pytest.approx(
        expected_rolling(lm, lambda i: reference_logits(config, state, i)), abs=1e-3)


def test_mamba2attn_ssm_layers_match_transformers_mamba2(tmp_path, tokenizer_dir):
    """Its Mamba2 layers computed by transformers' own Mamba2Mixer, attention by the reference."""
    config, state = write(tmp_path, "mamba2attn")
    lm = load(tmp_path, tokenizer_dir)
    want = expected_rolling(
        lm, lambda ids: reference_logits(config, state, ids, transformers_mamba2_mixer))
    assert rolling(lm) == pytest.approx(want, abs=1e-3)


def test_transformerpp_matches_transformers_llama(tmp_path, tokenizer_dir):
    """A Transformer++ whose config Llama expresses (full rotary, no conv, no biases)
    equals LlamaForCausalLM on the same weights, in float32."""
    config, state = write(tmp_path, "transformerpp")
    a, d = config["attn_cfg"], config["d_model"]
    hidden = state["backbone.layers.0.mlp.fc2.weight"].shape[1]
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=state["backbone.embedding.weight"].shape[0], hidden_size=d,
        intermediate_size=hidden, num_hidden_layers=config["n_layer"],
        num_attention_heads=a["num_heads"], num_key_value_heads=a["num_heads_kv"],
        head_dim=a["head_dim"], rms_norm_eps=1e-5, tie_word_embeddings=False,
        max_position_embeddings=4096)).eval()
    q, kv = a["num_heads"] * a["head_dim"], a["num_heads_kv"] * a["head_dim"]
    mapped = {"model.embed_tokens.weight": state["backbone.embedding.weight"],
              "model.norm.weight": state["backbone.norm_f.weight"],
              "lm_head.weight": state["lm_head.weight"]}
    for i in range(config["n_layer"]):
        p, o = f"backbone.layers.{i}.", f"model.layers.{i}."
        wq, wk, wv = state[p + "mixer.in_proj.weight"].split([q, kv, kv])
        up, gate = state[p + "mlp.fc1.weight"].chunk(2)
        mapped.update({
            o + "self_attn.q_proj.weight": wq, o + "self_attn.k_proj.weight": wk,
            o + "self_attn.v_proj.weight": wv,
            o + "self_attn.o_proj.weight": state[p + "mixer.out_proj.weight"],
            o + "input_layernorm.weight": state[p + "norm.weight"],
            o + "post_attention_layernorm.weight": state[p + "norm2.weight"],
            o + "mlp.gate_proj.weight": gate, o + "mlp.up_proj.weight": up,
            o + "mlp.down_proj.weight": state[p + "mlp.fc2.weight"],
        })
    llama.load_state_dict(mapped, strict=True)
    lm = load(tmp_path, tokenizer_dir)
    with torch.no_grad():
        want = expected_rolling(lm, lambda ids: llama(ids[None]).logits[0])
    assert rolling(lm) == pytest.approx(want, abs=1e-3)


BROKEN = {
    "unknown top-level field": ({"d_state": 8}, "unknown top-level field 'd_state'"),
    "unknown attn_cfg field": ({"attn_cfg": {"num_heads": 4, "causal": True, "rotary_dim": 4}},
                               "unknown attn_cfg field 'rotary_dim'"),
    "unknown ssm_cfg field": ({"ssm_cfg": {"layer": "Mamba2", "d_stat": 8}},
                              "unknown ssm_cfg field 'd_stat'"),
    "non-causal attention": ({"attn_cfg": {"num_heads": 6, "head_dim": 8}},
                             "non-causal attention"),
    "Mamba3": ({"ssm_cfg": {"layer": "Mamba3"}}, "layer 'Mamba3' in ssm_cfg is not supported"),
    "LayerNorm blocks": ({"rms_norm": False}, r"rms_norm=false \(LayerNorm blocks\)"),
    "per-channel D": ({"ssm_cfg": {"layer": "Mamba2", "headdim": 8, "D_has_hdim": True}},
                      "D_has_hdim=true"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_config_fields_it_does_not_understand_are_refused(case, tmp_path):
    extra, message = BROKEN[case]
    config = {**MAMBA_SSM_CONFIGS["mamba2attn"], **extra}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        mamba_ssm.open_checkpoint(str(tmp_path))


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("backbone.layers.1.mixer.conv1d.bias"),
     "missing key 'backbone.layers.1.mixer.conv1d.bias'"),
    (lambda s: s.update({"backbone.layers.0.mixer.extra": torch.zeros(2)}),
     "unexpected key 'backbone.layers.0.mixer.extra'"),
    (lambda s: s.update({"backbone.layers.1.mixer.in_proj.weight": torch.zeros(3, 32)}),
     r"backbone.layers.1.mixer.in_proj.weight has shape \(3, 32\), expected"),
], ids=["missing", "unexpected", "shape"])
def test_weights_that_do_not_match_the_config_are_refused(change, message, tmp_path,
                                                          tokenizer_dir):
    _, state = write(tmp_path, "mamba2attn")
    change(state)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=message):
        load(tmp_path, tokenizer_dir)


def test_a_truncated_weights_file_is_refused(tmp_path, tokenizer_dir):
    write(tmp_path, "mamba2attn")
    data = (tmp_path / "pytorch_model.bin").read_bytes()
    (tmp_path / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read weights file .*pytorch_model.bin"):
        load(tmp_path, tokenizer_dir)


@pytest.fixture
def tokenizers_asked(tokenizer_dir, monkeypatch):
    """Names passed to AutoTokenizer.from_pretrained; each gets a local char tokenizer."""
    asked = []
    original = transformers.AutoTokenizer.from_pretrained

    def fake(name, *args, **kwargs):
        asked.append(name)
        return original(str(tokenizer_dir("char")), *args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    return asked


@pytest.mark.parametrize("kind", ["mamba1", "mamba2attn"])
def test_native_checkpoints_default_to_the_gpt_neox_tokenizer(kind, tmp_path, tokenizers_asked):
    write(tmp_path, kind)
    LongContextLM(pretrained=str(tmp_path), device="cpu")
    assert tokenizers_asked == ["EleutherAI/gpt-neox-20b"]


def test_tasks_size_native_checkpoints_with_the_gpt_neox_tokenizer(tmp_path, tokenizers_asked):
    """The tasks and lc_hf must agree on the tokenizer, or prompts are sized wrong."""
    from lc_tasks import tokenizer as task_tokenizer

    write(tmp_path, "transformerpp")
    task_tokenizer.load_tokenizer.cache_clear()
    task_tokenizer.resolve_tokenizer({"pretrained": str(tmp_path)})
    task_tokenizer.resolve_tokenizer({"pretrained": str(tmp_path), "tokenizer": "my/tok"})
    task_tokenizer.load_tokenizer.cache_clear()
    assert tokenizers_asked == ["EleutherAI/gpt-neox-20b", "my/tok"]


def test_only_the_attention_layers_state_grows_with_the_input(tmp_path, tokenizer_dir):
    """SSM layers keep a fixed-size state; attention layers a KV cache of every token."""
    write(tmp_path, "mamba2attn")
    runner = load(tmp_path, tokenizer_dir).runner

    def layer_bytes(n_tokens):
        state = runner.new_state(1)
        runner.prefill(torch.zeros(1, n_tokens, dtype=torch.long), state)
        sizes = []
        for layer in state.layers:
            single = type(state)([layer], state.n_tokens, 1)
            sizes.append(single.nbytes())
        return sizes

    short, long = layer_bytes(10), layer_bytes(100)
    attn = MAMBA_SSM_CONFIGS["mamba2attn"]["attn_layer_idx"]
    for i, (a, b) in enumerate(zip(short, long)):
        if i in attn:  # k and v: 6 heads x 8 dims, fp32, per token; conv inputs fixed
            assert b - a == 90 * 2 * 6 * 8 * 4, f"layer {i}"
        else:
            assert a == b > 0, f"SSM layer {i} grew from {a} to {b} bytes"
