"""RWKV-6 (x060) runs exactly through lc_hf, checked against BlinkDL's own `rwkv` package.

The tests write tiny random checkpoints in BlinkDL's native ``.pth`` format and in the HF
format (``lc_models.zoo.tiny_native.save_rwkv6``, the same weights), and compare:
* our logits with the ``rwkv`` package's (``RWKV(..., "cpu fp32").forward(full_output=True)``,
  the inference code RWKV's authors maintain), in one call and continued from its state;
* the two formats with each other;
* the World tokenizer with the package's ``TRIE_TOKENIZER``.
"""

from __future__ import annotations

import json

import pytest
import torch

from lc_models import models
from lc_models.adapter import LongContextLM
from lc_models.models import rwkv6
from lc_models.models.rwkv_world import world_tokenizer
from lc_models.zoo.tiny_native import rwkv6_state, save_rwkv6

TOLERANCE = 1e-4  # relative to the largest |logit|, fp32


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    return save_rwkv6(tmp_path_factory.mktemp("rwkv6") / "tiny.pth", "pth", seed=3)


@pytest.fixture(scope="module")
def blinkdl(pth):
    """BlinkDL's rwkv package on the same .pth."""
    from rwkv.model import RWKV

    return RWKV(model=str(pth)[: -len(".pth")], strategy="cpu fp32", verbose=False)


@pytest.fixture(scope="module")
def ours(pth):
    return models.find(pth).load(dtype=torch.float32)


def tokens(n, seed=0):
    return torch.randint(0, 65536, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("n", [1, 17, 70])
def test_logits_equal_blinkdl_rwkv_package(n, blinkdl, ours):
    ids = tokens(n)
    want, _ = blinkdl.forward(ids, None, full_output=True)  # (n, vocab)
    got = ours(torch.tensor([ids])).logits[0]
    assert relative(got, want.reshape(got.shape)) < TOLERANCE


def test_state_carried_across_calls_equals_the_package_s_state(blinkdl, ours):
    """Both continue a sequence from their own state: the continuations must agree."""
    first, second = tokens(23, seed=1), tokens(9, seed=2)
    _, package_state = blinkdl.forward(first, None)
    want, _ = blinkdl.forward(second, package_state, full_output=True)
    state = ours.new_state(1)
    ours.prefill(torch.tensor([first]), state)
    got = ours.prefill(torch.tensor([second]), state)[0]
    assert relative(got, want) < TOLERANCE


def test_hf_format_and_native_pth_give_identical_logits(tmp_path, ours):
    hf = models.find(save_rwkv6(tmp_path / "hf", "hf", seed=3)).load(dtype=torch.float32)
    ids = torch.tensor([tokens(31)])
    assert torch.equal(hf(ids).logits, ours(ids).logits)


def test_shapes_are_read_from_the_weights(tmp_path):
    path = save_rwkv6(tmp_path / "m.pth", n_embd=64, n_layer=3, head_size=16, mix_lora=4,
                      decay_lora=8, vocab_size=300)
    cfg = models.find(path).config
    assert (cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.head_size, cfg.mix_lora, cfg.decay_lora,
            cfg.vocab_size, cfg.dim_ffn) == (64, 3, 4, 16, 4, 8, 300, 224)


TEXTS = [
    "The pass key is 12345. Remember it.",
    "  leading and trailing spaces  \n\n\n",
    "unicode: 中文, ünïcödé, emoji 🙂, tabs\tand\r\nlines",
    "<|endoftext|> is id 0",
]


@pytest.mark.parametrize("text", TEXTS)
def test_world_tokenizer_is_blinkdl_greedy_longest_match(text):
    import rwkv
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

    vocab = f"{rwkv.__path__[0]}/rwkv_vocab_v20230424.txt"
    tok = world_tokenizer()
    ids = tok(text, add_special_tokens=True)["input_ids"]
    if "<|endoftext|>" in text:  # the end-of-text marker is its own token, id 0
        assert ids[0] == 0 and tok.decode(ids) == text
    else:
        assert ids == TRIE_TOKENIZER(vocab).encode(text), "not the package's tokenization"
        assert tok.decode(ids) == text
    assert tok.eos_token_id == tok.pad_token_id == 0


def test_world_tokenizer_decodes_partial_utf8_without_failing():
    tok = world_tokenizer()
    ids = tok.encode("中文")
    pieces = [tok.decode(ids[:i]) for i in range(len(ids) + 1)]
    assert pieces[-1] == "中文"


def test_lc_hf_uses_the_world_tokenizer_for_rwkv6_checkpoints(pth):
    lm = LongContextLM(pretrained=str(pth), device="cpu", dtype="float32")
    assert type(lm.tokenizer).__name__ == "RwkvWorldTokenizer"
    assert lm.tok_encode("Hello world") == [33155, 40213]


def test_tasks_size_rwkv6_checkpoints_with_the_world_tokenizer(pth, tmp_path):
    from lc_tasks import tokenizer as task_tokenizer

    for pretrained in (pth, pth.parent, save_rwkv6(tmp_path / "hf", "hf")):
        tok = task_tokenizer.resolve_tokenizer({"pretrained": str(pretrained)})
        assert type(tok).__name__ == "RwkvWorldTokenizer", pretrained


def broken_pth(tmp_path, change):
    state = rwkv6_state(n_embd=32, vocab_size=100)
    change(state)
    torch.save(state, tmp_path / "bad.pth")
    return tmp_path / "bad.pth"


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("blocks.1.att.gate.weight"), "missing key 'blocks.1.att.gate.weight'"),
    (lambda s: s.update({"blocks.0.att.time_state": torch.zeros(4, 8, 8)}),
     "unexpected key 'blocks.0.att.time_state'"),
    (lambda s: s.update({"blocks.0.att.r_k": s.pop("blocks.0.att.time_maa_x")}),
     r"is an RWKV-7 \(x070\) checkpoint"),
    (lambda s: [s.pop(k) for k in list(s) if "time_maa" in k or "faaaa" in k],
     "is not an RWKV checkpoint"),
], ids=["missing-key", "unexpected-key", "rwkv7", "not-rwkv"])
def test_broken_pth_files_are_one_clear_error(change, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        models.find(broken_pth(tmp_path, change)).load()


def test_a_pth_of_something_else_is_refused(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds no state dict of tensors"):
        models.find(tmp_path / "list.pth")


def test_a_folder_with_several_pth_files_asks_for_one(tmp_path):
    save_rwkv6(tmp_path / "a.pth")
    save_rwkv6(tmp_path / "b.pth")
    with pytest.raises(ValueError, match="several .pth files .*pass pretrained=<one .pth file>"):
        models.find(tmp_path)


@pytest.mark.parametrize("edit, message", [
    ({"rescale_layers": 6}, "config.json field 'rescale_layers' is unknown"),
    ({"hidden_size": 64}, "config.json says hidden_size=64, but the weights have 32"),
])
def test_hf_configs_it_does_not_understand_are_refused(edit, message, tmp_path):
    folder = save_rwkv6(tmp_path / "hf", "hf")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(ValueError, match=message):
        models.find(folder)


def test_the_state_has_a_fixed_size_whatever_the_input_length(ours):
    state = ours.new_state(1)
    per_layer = 2 * 32 * 4 + 4 * 8 * 8 * 4  # two shifts of n_embd fp32, one 8x8 WKV per head
    assert ours.config.model_type == rwkv6.MODEL_TYPE
    assert state.nbytes() == per_layer * ours.cfg.n_layer
    ours.prefill(torch.tensor([tokens(50)]), state)
    assert state.nbytes() == per_layer * ours.cfg.n_layer
