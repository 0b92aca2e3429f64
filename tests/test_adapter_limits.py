"""lc_hf's contract at the edges: no truncation, refusal of what it cannot do exactly,
bounded memory, generation kwargs, progress bars."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from lm_eval.api.instance import Instance
from transformers import AutoModelForCausalLM

from lc_models import prefill
from lc_models.adapter import LongContextLM
from lc_models.hf_runners import runner_for
from lc_models.prefill import feed

LONG = "The grass is green. The sky is blue. The sun is yellow. " * 3  # 168 chars / tokens



@pytest.fixture(scope="module")
def capped(tiny_model):
    """lc_hf on a llama with a user max_length of 100 tokens."""
    return LongContextLM(pretrained=str(tiny_model("llama")), max_length=100, device="cpu")


@pytest.mark.parametrize(
    "kind, args",
    [
        ("loglikelihood", (LONG, " yes")),
        ("loglikelihood_rolling", (LONG,)),
        ("generate_until", (LONG, {"until": ["\n"], "max_gen_toks": 5})),
        ("generate_until", (LONG[:97], {"until": ["\n"], "max_gen_toks": 5})),
    ],
    ids=["loglikelihood", "rolling", "generate", "generate-with-new-tokens"],
)
def test_request_over_user_max_length_is_an_error_not_a_truncation(capped, kind, args):
    with pytest.raises(ValueError, match=r"request is 1\d\d tokens long, over max_length=100"):
        getattr(capped, kind)([Instance(kind, {}, args, 0)])


def test_without_max_length_there_is_no_limit_and_going_past_positions_is_logged_once(
    tiny_model, caplog, tmp_path
):
    shutil.copytree(tiny_model("llama"), tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}))
    lm = LongContextLM(pretrained=str(tmp_path), chunk_size=16, device="cpu")
    requests = [Instance("loglikelihood", {}, (LONG, " yes"), i) for i in range(2)]
    requests.append(Instance("loglikelihood", {}, (LONG[:80], " no"), 2))
    logger = logging.getLogger("lm_eval.models.lc_hf")
    logger.addHandler(caplog.handler)  # lm-eval's logger may not propagate to the root
    try:
        results = lm.loglikelihood(requests, disable_tqdm=True)
    finally:
        logger.removeHandler(caplog.handler)
    assert lm.max_length > 10**9
    assert all(isinstance(score, float) for score, _ in results)
    # a record may reach caplog twice (direct handler and root), so count distinct records
    notes = {id(r): r.message for r in caplog.records if "max_position_embeddings=64" in r.message}
    assert len(notes) == 1, notes


@pytest.mark.parametrize(
    "kwargs, message",
    [({"batch_size": "auto"}, "integer batch_size"), ({"chunk_size": 0}, "chunk_size")],
    ids=["batch-auto", "chunk-zero"],
)
def test_bad_model_args_fail_with_one_clear_line(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        LongContextLM(pretrained=str(tiny_model("llama")), device="cpu", **kwargs)


def test_an_unknown_architecture_whose_cache_is_wrong_is_refused(tiny_model):
    """Mamba without our fix gives wrong chunked logits; under an unknown name it is refused."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model("mamba")).eval()
    model.config.model_type = "someones_mamba"
    with pytest.raises(ValueError, match="refuses model type 'someones_mamba'"):
        runner_for(model)


def test_an_unknown_architecture_whose_cached_forward_raises_anything_is_refused(tiny_model):
    """xLSTM handed a DynamicCache raises AttributeError deep inside transformers; under an
    unknown name it is refused with our message, whatever the exception class."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model("xlstm")).eval()
    model.config.model_type = "someones_xlstm"
    with pytest.raises(ValueError, match="refuses model type 'someones_xlstm'.*AttributeError"):
        runner_for(model)


def test_learned_absolute_positions_refuse_longer_requests_before_any_compute(tiny_model,
                                                                             monkeypatch):
    lm = LongContextLM(pretrained=str(tiny_model("gpt2")), device="cpu")  # n_positions 512
    assert lm.max_length == 512
    calls = []
    monkeypatch.setattr(lm.runner, "prefill", lambda *a, **k: calls.append(1))
    long = [Instance("loglikelihood", {}, (LONG * 4, " yes"), 0)]  # 672 tokens
    with pytest.raises(ValueError, match="gpt2 has learned absolute positions for only 512 "
                                         r"tokens \(transformer.wpe\)"):
        lm.loglikelihood(long, disable_tqdm=True)
    assert calls == [], "a forward ran before the refusal"


def test_an_unknown_architecture_whose_cache_is_right_is_accepted(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama")).eval()
    model.config.model_type = "someones_llama"
    assert runner_for(model) is not None


def test_the_check_crosses_a_local_attention_window(tiny_model):
    from lc_models.verify import probe_size

    model = AutoModelForCausalLM.from_pretrained(tiny_model("mistral")).eval()
    length, chunk = probe_size(model.config)
    assert length > model.config.sliding_window and chunk % 2 == 1
    assert type(runner_for(model)).__name__ == "CacheRunner"  # mistral is not in our lists


def test_a_state_list_model_is_checked_with_a_batch(tiny_model):
    """RWKV-style models (``state=[tensors]``, as RWKV-5/6 remote code) go through the same
    check, batched: unpatched transformers RWKV breaks on one-token chunks of two rows."""
    from lc_models.hf_runners import rwkv

    model = AutoModelForCausalLM.from_pretrained(tiny_model("rwkv")).eval()
    model.config.model_type = "someones_rwkv"
    with pytest.raises(ValueError, match="refuses model type 'someones_rwkv'"):
        runner_for(model)
    rwkv.patch(model)
    assert type(runner_for(model)).__name__ == "StateListRunner"


def state_bytes(model, n_tokens):
    runner = runner_for(model)
    ids = [[5 + i % 90 for i in range(n_tokens)]]
    return feed(runner, ids, runner.new_state(1), chunk_size=32, keep_states=True)[0].state.nbytes()


@pytest.mark.parametrize("arch", ["mamba", "mamba2", "rwkv", "recurrent_gemma"])
def test_recurrent_state_does_not_grow_with_the_input(arch, tiny_model):
    """Pure recurrent models (and a 12-token local attention window) keep a fixed state."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch)).eval()
    assert state_bytes(model, 40) == state_bytes(model, 400) > 0


@pytest.mark.parametrize("arch", ["llama", "jamba"])
def test_attention_layers_grow_only_their_kv_cache(arch, tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch)).eval()
    small, big = state_bytes(model, 40), state_bytes(model, 400)
    per_token = (big - small) / 360
    assert per_token > 0
    assert small - 40 * per_token == pytest.approx(big - 400 * per_token), "growth not linear"


def test_generation_honours_until_max_gen_toks_and_sampling_kwargs(tiny_model):
    path = tiny_model("llama", tie_word_embeddings=False)
    lm = LongContextLM(pretrained=str(path), chunk_size=16, device="cpu")
    prompt = LONG[:60]
    greedy, short = lm.generate_until(
        [
            Instance("generate_until", {}, (prompt, {"until": ["\n"], "max_gen_toks": 8}), 0),
            Instance("generate_until", {}, (prompt, {"until": ["\n"], "max_gen_toks": 3}), 1),
        ]
    )
    assert len(lm.tok_encode(short)) <= 3 and greedy.startswith(short)
    stop = greedy[4]
    (cut,) = lm.generate_until(
        [Instance("generate_until", {}, (prompt, {"until": [stop], "max_gen_toks": 8}), 0)]
    )
    assert cut == greedy[: greedy.index(stop)]
    # sampling with top_k=1 can only pick the argmax
    (sampled,) = lm.generate_until(
        [
            Instance(
                "generate_until",
                {},
                (prompt, {"do_sample": True, "temperature": 0.7, "top_k": 1, "max_gen_toks": 8}),
                0,
            )
        ]
    )
    assert sampled == greedy
    torch.manual_seed(0)
    hot = {"do_sample": True, "temperature": 5.0, "until": ["\n"], "max_gen_toks": 8}
    draws = lm.generate_until([Instance("generate_until", {}, (prompt, hot), i) for i in range(3)])
    assert any(d != greedy for d in draws), "temperature 5 sampling never left the argmax"
    with pytest.raises(ValueError, match="num_beams"):
        lm.generate_until([Instance("generate_until", {}, (prompt, {"num_beams": 4}), 0)])


def test_prefills_that_take_a_while_show_a_tokens_per_second_bar(tiny_model, monkeypatch,
                                                                   capsys):
    """The bar appears once a prefill has run PROGRESS_DELAY seconds, whatever its length."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model("mamba")).eval()
    runner = runner_for(model)
    monkeypatch.setattr(prefill, "PROGRESS_DELAY", 60.0)
    feed(runner, [[5] * 150], runner.new_state(1), chunk_size=16)
    assert "tok/s" not in capsys.readouterr().err, "a quick prefill should show no bar"
    monkeypatch.setattr(prefill, "PROGRESS_DELAY", 0.0)
    feed(runner, [[5] * 150], runner.new_state(1), chunk_size=16)
    assert "tok/s" in capsys.readouterr().err


def test_the_static_list_of_hf_model_args_is_lm_evals_own():
    """lc_models.args keeps HFLM's parameters as data (its checks import no torch); a new
    lm-eval version that changes them must update the list."""
    import inspect

    from lm_eval.models.huggingface import HFLM

    from lc_models.args import HF_ARGS

    assert set(inspect.signature(HFLM.__init__).parameters) - {"self", "kwargs"} == HF_ARGS


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_once(tiny_model, caplog, monkeypatch,
                                                                 has_bf16):
    from lc_models.ops import linear

    monkeypatch.setattr(linear, "cpu_has_bf16", lambda: has_bf16)
    logger = logging.getLogger("lm_eval.models.lc_hf")
    logger.addHandler(caplog.handler)  # lm-eval's logger may not propagate to the root
    try:
        LongContextLM(pretrained=str(tiny_model("llama")), dtype="bfloat16", device="cpu")
        LongContextLM(pretrained=str(tiny_model("llama")), dtype="float32", device="cpu")
    finally:
        logger.removeHandler(caplog.handler)
    notes = {id(r) for r in caplog.records if "no bf16 instructions" in r.message}
    assert len(notes) == (0 if has_bf16 else 1)
    assert all("use dtype=float32" in r.message for r in caplog.records
               if "no bf16 instructions" in r.message)
