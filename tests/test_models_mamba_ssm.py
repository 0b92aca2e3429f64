"""Native mamba_ssm checkpoints load through lc_hf and compute what mamba_ssm computes.

The tests write tiny checkpoints in mamba_ssm's own format (its config.json keys,
``backbone.*`` weights in pytorch_model.bin, no tokenizer) and compare lc_hf
against a small functional re-implementation of mamba_ssm's forward pass that
reads the raw weights, so a wrong key, shape or config mapping shows up.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import transformers
from lm_eval.api.instance import Instance

from lc_models import native_mamba
from lc_models.adapter import LongContextLM
from lc_models.tiny import build_tokenizer

NATIVE = {
    "mamba1": {"ssm_cfg": {}, "pad_vocab_size_multiple": 16},
    "mamba2": {
        "ssm_cfg": {"layer": "Mamba2", "d_state": 8, "headdim": 8, "ngroups": 2, "chunk_size": 16},
        "pad_vocab_size_multiple": 16,
    },
}
TEXT = "There is an important info hidden inside a lot of irrelevant text. The pass key is 98765."



def write_native(path, kind, **extra):
    """A random tiny checkpoint in mamba_ssm's format; returns (config, state dict)."""
    config = {
        "d_model": 32,
        "d_intermediate": 0,
        "n_layer": 2,
        "vocab_size": len(build_tokenizer("char")),
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "tie_embeddings": True,
        **NATIVE[kind],
        **extra,
    }
    generator = torch.Generator().manual_seed(0)
    hf = native_mamba.to_hf_config(config)
    shapes = {}
    for i in range(config["n_layer"]):
        shapes.update(layer_shapes(hf, f"backbone.layers.{i}."))
    shapes["backbone.embedding.weight"] = (hf.vocab_size, hf.hidden_size)
    shapes["backbone.norm_f.weight"] = (hf.hidden_size,)
    state = {k: 0.3 * torch.randn(s, generator=generator) for k, s in shapes.items()}
    for key, value in state.items():
        if key.endswith("A_log"):
            state[key] = value.abs().log1p()
        if key.endswith(("norm.weight", "norm_f.weight")):
            state[key] = 1 + value / 3
    state["lm_head.weight"] = state["backbone.embedding.weight"]  # tied, saved like mamba_ssm
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    torch.save(state, path / "pytorch_model.bin")
    return config, state


def layer_shapes(hf, p):
    d, inner, n = hf.hidden_size, hf.expand * hf.hidden_size, hf.state_size
    shapes = {p + "norm.weight": (d,), p + "mixer.out_proj.weight": (d, inner)}
    if hf.model_type == "mamba":
        rank = hf.time_step_rank
        shapes.update(
            {
                p + "mixer.in_proj.weight": (2 * inner, d),
                p + "mixer.conv1d.weight": (inner, 1, 4),
                p + "mixer.conv1d.bias": (inner,),
                p + "mixer.x_proj.weight": (rank + 2 * n, inner),
                p + "mixer.dt_proj.weight": (inner, rank),
                p + "mixer.dt_proj.bias": (inner,),
                p + "mixer.A_log": (inner, n),
                p + "mixer.D": (inner,),
            }
        )
    else:
        heads, conv = hf.num_heads, inner + 2 * hf.n_groups * n
        shapes.update(
            {
                p + "mixer.in_proj.weight": (inner + conv + heads, d),
                p + "mixer.conv1d.weight": (conv, 1, 4),
                p + "mixer.conv1d.bias": (conv,),
                p + "mixer.dt_bias": (heads,),
                p + "mixer.A_log": (heads,),
                p + "mixer.D": (heads,),
                p + "mixer.norm.weight": (inner,),
            }
        )
    return shapes


# ---- mamba_ssm's forward pass, written from its definition, on the raw weights ----
def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def causal_conv(x, w, b):  # x (L, C) -> (L, C), depthwise, silu
    return F.silu(
        F.conv1d(x.T[None], w, b, padding=w.shape[-1] - 1, groups=x.shape[1])[0, :, : len(x)].T
    )


def mamba1_mixer(x, w, cfg):  # x (L, d)
    inner = w["in_proj.weight"].shape[0] // 2
    n = w["A_log"].shape[1]
    xs, z = (x @ w["in_proj.weight"].T).split(inner, -1)
    xs = causal_conv(xs, w["conv1d.weight"], w["conv1d.bias"])
    dt, B, C = (xs @ w["x_proj.weight"].T).split([w["dt_proj.weight"].shape[1], n, n], -1)
    dt = F.softplus(dt @ w["dt_proj.weight"].T + w["dt_proj.bias"])  # (L, inner)
    A, h, ys = -w["A_log"].exp(), torch.zeros(inner, n), []
    for t in range(len(x)):
        h = torch.exp(dt[t, :, None] * A) * h + (dt[t] * xs[t])[:, None] * B[t]
        ys.append(h @ C[t] + w["D"] * xs[t])
    return (torch.stack(ys) * F.silu(z)) @ w["out_proj.weight"].T


def mamba2_mixer(x, w, cfg):
    ssm = cfg["ssm_cfg"]
    heads, n, groups, p = w["A_log"].shape[0], ssm["d_state"], ssm["ngroups"], ssm["headdim"]
    inner = heads * p
    z, xbc, dt = (x @ w["in_proj.weight"].T).split([inner, inner + 2 * groups * n, heads], -1)
    xs, B, C = causal_conv(xbc, w["conv1d.weight"], w["conv1d.bias"]).split(
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


def reference_logits(config, state, ids):
    mixer = mamba2_mixer if (config["ssm_cfg"] or {}).get("layer") == "Mamba2" else mamba1_mixer
    h = state["backbone.embedding.weight"][ids]
    for i in range(config["n_layer"]):
        p = f"backbone.layers.{i}."
        w = {k[len(p) + 6 :]: v for k, v in state.items() if k.startswith(p + "mixer.")}
        h = h + mixer(rms(h, state[p + "norm.weight"]), w, config)
    return rms(h, state["backbone.norm_f.weight"]) @ state["lm_head.weight"].T


@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_native_checkpoint_computes_what_mamba_ssm_computes(kind, tmp_path, tokenizer_dir):
    config, state = write_native(tmp_path / kind, kind)
    lm = LongContextLM(
        pretrained=str(tmp_path / kind),
        tokenizer=str(tokenizer_dir("char")),
        chunk_size=7,
        device="cpu",
    )
    assert (
        type(lm.model).__name__
        == {"mamba1": "MambaForCausalLM", "mamba2": "Mamba2ForCausalLM"}[kind]
    )
    tokens = lm.tok_encode(TEXT)
    ids = torch.tensor([lm.prefix_token_id, *tokens[:-1]])
    logprobs = reference_logits(config, state, ids).log_softmax(-1)
    want = float(logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].double().sum())
    (got,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (TEXT,), 0)])
    assert got == pytest.approx(want, abs=1e-3), f"{kind}: {got} vs {want}"


@pytest.mark.parametrize(
    "kind, extra, missing",
    [
        ("mamba2", {"attn_layer_idx": [1], "attn_cfg": {"num_heads": 4}}, "attention layers"),
        ("mamba2", {"attn_layer_idx": [0, 1], "d_intermediate": 64}, "MLP blocks"),
    ],
    ids=["mamba2attn", "transformerpp"],
)
def test_hybrids_transformers_cannot_express_are_refused(kind, extra, missing, tmp_path):
    write_native(tmp_path, "mamba2")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **extra}))
    with pytest.raises(
        ValueError, match=f"cannot load this native mamba_ssm checkpoint.*{missing}"
    ):
        LongContextLM(pretrained=str(tmp_path), tokenizer="unused", device="cpu")


@pytest.fixture
def tokenizers_asked(tokenizer_dir, monkeypatch):
    """Names passed to AutoTokenizer.from_pretrained; each gets a local char tokenizer."""
    asked = []
    load = transformers.AutoTokenizer.from_pretrained

    def fake(name, *args, **kwargs):
        asked.append(name)
        return load(str(tokenizer_dir("char")), *args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    return asked


def test_native_checkpoints_default_to_the_gpt_neox_tokenizer(tmp_path, tokenizers_asked):
    write_native(tmp_path, "mamba1")
    LongContextLM(pretrained=str(tmp_path), device="cpu")
    assert tokenizers_asked == ["EleutherAI/gpt-neox-20b"]


def test_tasks_size_native_checkpoints_with_the_gpt_neox_tokenizer(tmp_path, tokenizers_asked):
    """The tasks and lc_hf must agree on the tokenizer, or prompts are sized wrong."""
    from lc_tasks import tokenizer as task_tokenizer

    write_native(tmp_path, "mamba2")
    task_tokenizer.load_tokenizer.cache_clear()
    task_tokenizer.resolve_tokenizer({"pretrained": str(tmp_path)})
    task_tokenizer.resolve_tokenizer({"pretrained": str(tmp_path), "tokenizer": "my/tok"})
    task_tokenizer.load_tokenizer.cache_clear()
    assert tokenizers_asked == ["EleutherAI/gpt-neox-20b", "my/tok"]
