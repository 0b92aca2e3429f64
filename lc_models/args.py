"""Checks of ``lc_hf``'s model arguments and generation kwargs: one UsageError naming the fix.

lm-eval hands model arguments over as strings or simple values (``chunk_size=2048`` arrives as
the int 2048, ``chunk_size=abc`` as the string "abc"). ``check_model_args`` validates ours
(types, ranges, the dtype and device names), and refuses an unknown argument that looks like one
of ours or of ``hf``'s, instead of letting it reach ``from_pretrained`` as a stray keyword.
Arguments it does not recognise and that look like nothing known are passed on to
``from_pretrained`` (transformers has many; a wrong one is reported when loading).

>>> check_model_args({"chunk_size": "64", "verify": "false"})["chunk_size"]
64
>>> check_model_args({"chunksize": 64})
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: unknown lc_hf model arg 'chunksize' (did you mean 'chunk_size'?)
>>> check_gen_kwargs({"max_gen_toks": "many"})
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: generation kwarg max_gen_toks='many' must be an integer >= 1 ...
"""

from __future__ import annotations

from typing import Any

from lc_tasks.errors import UsageError, suggest

# lc_hf's own arguments (beside all of hf's)
OWN = ("chunk_size", "max_length", "verify", "batch_size", "device", "dtype", "tokenizer",
       "pretrained", "trust_remote_code", "kernels")
# kernels=: which implementation every op runs (lc_models.ops.dispatch reads these)
KERNELS = ("auto", "torch", "native", "vendor")
VENDOR_PACKAGES = "flash-linear-attention, mamba-ssm, causal-conv1d"
# lm-eval 0.4.13's HFLM.__init__ parameters (a test checks them against the installed one; a
# static list keeps these checks free of torch and transformers imports)
HF_ARGS = frozenset({
    "add_bos_token", "autogptq", "backend", "batch_size", "chat_template_args", "delta", "device",
    "dtype", "enable_thinking", "gguf_file", "gptqmodel", "logits_cache", "max_batch_size",
    "max_cpu_memory", "max_length", "max_memory_per_gpu", "mixed_precision_dtype",
    "offload_folder", "parallelize", "peft", "prefix_token_id", "pretrained", "revision",
    "softmax_dtype", "subfolder", "think_end_token", "tokenizer", "tp_plan", "truncation",
    "trust_remote_code", "use_fast_tokenizer",
})
# keyword arguments of transformers' from_pretrained that hf passes on (never "misspelt")
FROM_PRETRAINED = frozenset({
    "device_map", "attn_implementation", "low_cpu_mem_usage", "torch_dtype",
    "quantization_config", "load_in_8bit", "load_in_4bit", "use_safetensors", "variant",
    "cache_dir", "local_files_only", "token", "force_download", "max_memory",
    "offload_state_dict", "use_flash_attention_2",
})
# dtypes a model's weights can run in (torch names, and lm-eval's "auto")
DTYPES = ("auto", "float32", "bfloat16", "float16", "float64", "float", "half", "double")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def as_int(name: str, value: Any, minimum: int = 1, fix: str = "") -> int:
    """``value`` as an integer >= ``minimum``, or a UsageError naming the argument."""
    try:
        out = int(value)
        ok = out >= minimum and (not isinstance(value, float) or value == out)
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(value, bool):
        raise UsageError(f"lc_hf model arg {name}={value!r} must be an integer >= {minimum}"
                         + (f"; {fix}" if fix else ""))
    return out


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise UsageError(f"lc_hf model arg {name}={value!r} must be true or false")


def check_dtype(value: Any) -> Any:
    """A floating dtype name lm-eval's ``get_dtype`` accepts (or ``auto``), else a UsageError."""
    if value is None or str(value).removeprefix("torch.") in DTYPES:
        return value
    raise UsageError(f"dtype={value!r} is not a dtype a model can run in: pass float32, "
                     "bfloat16, float16 or auto" + suggest(str(value), DTYPES))


def check_device(value: Any) -> Any:
    """A device torch can use on this machine (``cuda`` only with a GPU), else a UsageError."""
    if value is None or str(value) == "cpu":
        return value
    import torch

    try:
        device = torch.device(str(value))
    except (RuntimeError, ValueError):
        raise UsageError(f"device={value!r} is not a torch device: pass cpu, cuda or "
                         "cuda:<index>") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={value!r}, but this machine has no CUDA GPU: pass device=cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"device={value!r}, but there are {torch.cuda.device_count()} CUDA "
                         "devices: pass cuda:0 ..")
    return value


def kernel_name(value: Any) -> str:
    """``value`` as one of ``KERNELS``, else a UsageError naming the closest."""
    text = str(value).strip().lower()
    if text not in KERNELS:
        raise UsageError(f"kernels={value!r} is not one of {', '.join(KERNELS)}"
                         + suggest(text, KERNELS))
    return text


def check_kernels(value: Any, device: Any = None) -> str:
    """``kernels=`` as one of ``KERNELS``, if this machine and ``device`` can run it; else a
    UsageError naming the fix. ``vendor`` needs a CUDA device (each op's package is checked
    when it first runs); ``native`` needs the CPU and the compiled kernels."""
    text = kernel_name(value)
    if text in ("auto", "torch"):
        return text
    import torch

    on_cuda = (str(device).startswith("cuda") if device is not None
               else torch.cuda.is_available())
    if text == "vendor" and not (on_cuda and torch.cuda.is_available()):
        raise UsageError("kernels=vendor runs CUDA kernels (" + VENDOR_PACKAGES + "), but "
                         "this run has no CUDA device: pass kernels=auto, or device=cuda "
                         "with `pip install lc-eval[cuda]`")
    if text == "native":
        from lc_models.ops import native

        if on_cuda:
            raise UsageError("kernels=native runs the CPU kernels: pass device=cpu, or "
                             "kernels=auto")
        if not native.available():
            raise UsageError("kernels=native, but the native kernels are off (LC_EVAL_NATIVE=0"
                             " or no C compiler; see the log): pass kernels=auto or torch")
    return text


def check_model_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Validated and typed copy of lc_hf's model arguments (see the module docstring)."""
    out = dict(kwargs)
    known = set(OWN) | HF_ARGS
    for name in kwargs:
        if name not in known and name not in FROM_PRETRAINED:
            hint = suggest(name, known, cutoff=0.75)
            if hint:
                raise UsageError(f"unknown lc_hf model arg {name!r}{hint}")
    if out.get("chunk_size") is not None:
        out["chunk_size"] = as_int("chunk_size", out["chunk_size"], 1,
                                   "it is the number of tokens per forward call")
    if out.get("max_length") is not None:
        out["max_length"] = as_int("max_length", out["max_length"], 1)
    if "verify" in out:
        out["verify"] = as_bool("verify", out["verify"])
    if out.get("batch_size") is not None:
        if str(out["batch_size"]).startswith("auto"):
            raise UsageError(f"lc_hf takes an integer batch_size (rows prefilled together), not "
                             f"{out['batch_size']!r}; pass --batch_size 1 or more")
        out["batch_size"] = as_int("batch_size", out["batch_size"], 1)
    if "dtype" in out:
        check_dtype(out["dtype"])
    if "device" in out:
        check_device(out["device"])
    if "kernels" in out:
        out["kernels"] = check_kernels(out["kernels"], out.get("device"))
    return out


SAMPLING_KWARGS = ("do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty")
# kwargs lm-eval tasks pass that change nothing in lc_hf's decoding loop
_NEUTRAL = {"num_beams": 1, "num_return_sequences": 1, "use_cache": True, "early_stopping": False}
_STOPPING = ("until", "max_gen_toks")
# kwarg -> (type, smallest value, largest value) of the values lc_hf accepts
_RANGES = {"max_gen_toks": (int, 1, None), "temperature": (float, 0.0, None),
           "top_k": (int, 0, None), "top_p": (float, 0.0, 1.0), "min_p": (float, 0.0, 1.0),
           "repetition_penalty": (float, 0.0, None)}


def check_gen_kwargs(kwargs: dict) -> dict:
    """Typed copy of generation kwargs; an unsupported one, a wrong type or a range is one
    UsageError."""
    unknown = {k: v for k, v in kwargs.items() if k not in (*SAMPLING_KWARGS, *_STOPPING)
               and not (k in _NEUTRAL and v == _NEUTRAL[k])}
    if "max_length" in unknown:
        raise UsageError("lc_hf: use max_gen_toks, not max_length, in generation kwargs "
                         f"(got max_length={unknown['max_length']!r})")
    if unknown:
        raise UsageError(
            f"lc_hf does not support generation kwargs {unknown} (supported: "
            f"{', '.join(SAMPLING_KWARGS)}, until, max_gen_toks); remove them from the task's "
            "generation_kwargs or --gen_kwargs.")
    out = dict(kwargs)
    for name, (kind, low, high) in _RANGES.items():
        if out.get(name) is None:
            continue
        value = out[name]
        try:
            typed = kind(value)
            ok = not isinstance(value, bool) and typed >= low and (high is None or typed <= high)
            ok = ok and (kind is float or float(value) == typed)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            what = "an integer" if kind is int else "a number"
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise UsageError(f"generation kwarg {name}={value!r} must be {what} {bound} "
                             "(--gen_kwargs or the task's generation_kwargs)")
        out[name] = typed
    if "do_sample" in out and not isinstance(out["do_sample"], bool):
        text = str(out["do_sample"]).lower()
        if text not in ("true", "false", "1", "0"):
            raise UsageError(f"generation kwarg do_sample={out['do_sample']!r} must be true or "
                             "false")
        out["do_sample"] = text in ("true", "1")
    return out
