"""Shared fixtures: tiny offline models and tokenizers, built once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Never reach for a hub: every model and tokenizer in the tests is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A cache of this session's own (docs, compiled kernel): tests start cold and leave nothing in
# the user's ~/.cache/lc-eval. Subprocesses inherit it.
os.environ.setdefault("LC_EVAL_CACHE", tempfile.mkdtemp(prefix="lc-eval-test-cache-"))
# The tests run tiny models, for which thread start-up costs more than it saves (a tiny
# forward is ~6x faster on one thread on a busy 2-core machine). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """``tiny_model(arch, tokenizer="char", **overrides) -> Path`` of a saved checkpoint.

    Checkpoints are cached for the session, keyed by their arguments.
    """
    from lc_models.zoo.tiny import save_tiny_model

    cache: dict[tuple, Path] = {}

    def make(arch: str = "llama", tokenizer: str = "char", **overrides) -> Path:
        key = (arch, tokenizer, tuple(sorted(overrides.items())))
        if key not in cache:
            name = "-".join([arch, tokenizer, *(f"{k}{v}" for k, v in sorted(overrides.items()))])
            cache[key] = save_tiny_model(
                tmp_path_factory.mktemp(name), arch=arch, tokenizer=tokenizer, **overrides
            )
        return cache[key]

    return make


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory):
    """A non-editable install of this checkout: its wheel built and unpacked (no dependencies)
    into a bare folder, once per session."""
    # Built from a copy without build/: setuptools reuses build/lib, so a module renamed since
    # the checkout's last build would ship under its old name too.
    root = tmp_path_factory.mktemp("source") / "lc-eval"
    shutil.copytree(Path(__file__).resolve().parent.parent, root, ignore=shutil.ignore_patterns(
        ".git", ".ci-venv", ".venv", "build", "dist", "*.egg-info", "__pycache__", "out"))
    wheels = tmp_path_factory.mktemp("wheel")
    site = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(root)], check=True)
    (wheel,) = wheels.glob("lc_eval-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    return site


@pytest.fixture(scope="session")
def wheel_env(wheel_site) -> dict:
    """The environment of a process that imports lc-eval from ``wheel_site`` only, offline."""
    return {"PYTHONPATH": str(wheel_site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}


# Checkpoint kinds in native formats that lc_hf reads itself (lc_models.models).
NATIVE_KINDS = ("mamba2attn", "transformerpp", "every_field", "rwkv6_pth", "rwkv6_hf")


@pytest.fixture(scope="session")
def native_model(tmp_path_factory, tokenizer_dir):
    """``native_model(kind) -> (pretrained, tokenizer)`` of a tiny native checkpoint.

    mamba_ssm kinds (``lc_models.zoo.tiny_native.MAMBA_SSM_CONFIGS``) get the char tokenizer's
    vocabulary (they ship none, so ``tokenizer`` is its folder); RWKV-6 kinds (``rwkv6_pth``,
    ``rwkv6_hf``, the same weights) use the RWKV World tokenizer (``tokenizer`` is None).
    """
    from lc_models.zoo.tiny import build_tokenizer
    from lc_models.zoo.tiny_native import MAMBA_SSM_CONFIGS, save_mamba_ssm, save_rwkv6

    cache: dict[str, tuple[Path, str | None]] = {}

    def make(kind: str):
        if kind not in cache:
            folder = tmp_path_factory.mktemp(f"native-{kind}")
            if kind.startswith("rwkv6_"):
                fmt = kind.split("_")[1]
                path = save_rwkv6(folder / "model.pth" if fmt == "pth" else folder, fmt)
                cache[kind] = (path, None)
            else:
                vocab = len(build_tokenizer("char"))
                save_mamba_ssm(folder, MAMBA_SSM_CONFIGS[kind], vocab_size=vocab)
                cache[kind] = (folder, str(tokenizer_dir("char")))
        return cache[kind]

    return make


@pytest.fixture(scope="session")
def qa_options(tmp_path_factory):
    """``--metadata`` options naming test-made SQuAD v2 and HotpotQA files."""
    from qa_files import write_hotpot, write_squad

    folder = tmp_path_factory.mktemp("qa-data")
    return {"squad": str(write_squad(folder / "dev-v2.0.json")),
            "hotpotqa": str(write_hotpot(folder / "hotpot_dev_distractor_v1.json"))}


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """``tokenizer_dir(kind) -> Path`` of a saved offline tokenizer (char, bpe, word)."""
    from lc_models.zoo.tiny import build_tokenizer

    cache: dict[str, Path] = {}

    def make(kind: str = "char") -> Path:
        if kind not in cache:
            path = tmp_path_factory.mktemp(f"tok-{kind}")
            build_tokenizer(kind).save_pretrained(path)
            cache[kind] = path
        return cache[kind]

    return make


# The arguments of the one shared stock-`hf` CLI run; test_plugin.py repeats them with lc-eval.
def stock_hf_args(model: Path, out: Path) -> list[str]:
    import lc_tasks

    return [
        "run",
        "--model", "hf",
        "--model_args", f"pretrained={model},dtype=float32",
        "--device", "cpu",
        "--include_path", lc_tasks.include_path(),
        "--tasks", "lc_passkey_1k,lc_suite_1k",
        "--limit", "1",
        "--batch_size", "8",
        "--metadata", json.dumps({"num_samples": 1}),
        "--output_path", str(out),
        "--log_samples",
    ]  # fmt: skip


def read_run(out: Path) -> dict:
    """The newest results JSON lm-eval wrote under ``out``."""
    found = sorted(out.rglob("results_*.json"))
    assert found, f"lm-eval wrote no results under {out}"
    return json.loads(found[-1].read_text())


@pytest.fixture(scope="session")
def stock_hf_run(tiny_model, tmp_path_factory):
    """One real `lm_eval run --model hf` on a tiny Llama: lc_passkey_1k and lc_suite_1k.

    Returns ``(results_json, output_dir)``. Each CLI call costs ~30 s of lm-eval
    task indexing, so the tests that need stock output share this one.
    """
    out = tmp_path_factory.mktemp("lm-eval-out")
    run_cli("lm_eval", *stock_hf_args(tiny_model("llama"), out))
    return read_run(out), out


def executable(name: str) -> str:
    """Path of a console script installed beside this Python (lm_eval, lc-eval)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `pip install -e '.[dev]'` first")
    return found


def run_cli(*args: str, timeout: float = 600, check: bool = True, env=None, cwd=None):
    """Run a real executable in a subprocess; on failure, show its output."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [executable(args[0]), *args[1:]],
        check=False, capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
            f"\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def tiny_sparse(vocab_size: int = 100, index_topk: int = 8, seed: int = 0, **token_ids):
    """A tiny random DeepSeek-V3.2 in eval mode: a learned indexer picks each query's top-k
    keys (``token_ids``: e.g. ``bos_token_id=1`` for a checkpoint saved with a tokenizer)."""
    import torch
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    config = CONFIG_MAPPING["deepseek_v32"](
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, q_lora_rank=16,
        kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8,
        n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
        index_topk=index_topk, index_head_dim=16, index_n_heads=2, n_group=1, topk_group=1,
        **token_ids)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()
