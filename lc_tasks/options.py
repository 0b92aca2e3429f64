"""What a task is asked to build: ``TaskSpec``, parsed from lm-eval's metadata.

lm-eval hands a task's ``custom_dataset`` the merged ``--model_args`` and
``--metadata``, so the options arrive as keyword arguments, typed (JSON) or
as strings (model_args). Other keys are model arguments and are ignored, unless
one looks like a misspelt option: that is an error with "did you mean".

>>> spec = task_spec("vt", 4096, num_samples="5", num_hops=2, depths="0 50 100")
>>> spec.num_samples, spec.params["num_hops"], spec.depths
(5, 2, (0.0, 50.0, 100.0))
>>> task_spec("vt", 4096, hops=2)
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: unknown option 'hops' (did you mean 'num_hops'?); the options are ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from lc_tasks.errors import UsageError, closest
from lc_tasks.families import DEFAULT_DEPTHS, FAMILIES, READ_TWICE_KINDS, Family, copy_gen_toks

__all__ = ["OPTIONS", "TaskSpec", "check_option_names", "task_spec"]

# Option -> help text; the option table of each family's README (scripts/gen_task_configs.py)
# is written from this.
OPTIONS: dict[str, str] = {
    "num_samples": "docs per task (default 100; lc_ppl 20)",
    "seed": "base seed; every doc derives its own from it (default 42)",
    "depths": "needle depths in percent: a list, a count of evenly spaced levels, "
              "or a string like '0 25 50' (default 11 levels, 0..100)",
    "haystack": "`noise`, `prose`, the path of a text file, or `hf:<dataset>[:<config>]` "
                "(default: the family's own; niah_needles and niah_uuidkv, whose haystack "
                "is made of needles, and cwe/fwe ignore it)",
    "haystack_split": "split of an hf: haystack (default train)",
    "haystack_column": "text column of an hf: haystack (default text)",
    "num_hops": "vt: hops per chain (default 4)",
    "num_chains": "vt: chains, one asked for (default 1)",
    "reserve": "tokens kept free beyond max_gen_toks, e.g. for a chat template (default 0)",
    "squad": "qa_squad: the SQuAD v2 dev set, a path of dev-v2.0.json or hf:rajpurkar/squad_v2",
    "hotpotqa": "qa_hotpot: the HotpotQA dev-distractor set, a path of "
                "hotpot_dev_distractor_v1.json or hf:hotpotqa/hotpot_qa:distractor",
    "num_pairs": "kvrecall: key -> value pairs in the context (default 16; the "
                 "lc_kvrecall_<len>_p<N> tasks fix it to N)",
    "num_queries": "kvrecall: pairs asked for, all answers expected (default 1, at most 8)",
    "distances": "kvrecall: instead of depths, tokens between the asked pair and the question: "
                 "a list or a string like '100 1000' (docs cycle through them)",
    "copy_words": "copy: words in the passage (default 64; at most the task's own count, which "
                  "its max_gen_toks covers: 64, or N for lc_copy_<len>_w<N>)",
    "literal": "niah_latent: true asks about the needle in its own words, the control for the "
               "latent question (default false)",
    "num_distractors": "niah_latent: other characters, each with a fact of the same kind and "
                       "another target (default 4, at most 4)",
    "num_ops": "statetrack: swaps of two boxes' contents (default 16; the "
               "lc_statetrack_<len>_o<N> tasks fix it to N)",
    "parity": "statetrack: true swaps only boxes A and B, so the answer is the parity of the "
              "count (default false)",
    "query_first": "every family but ppl: true puts the question before the context too "
                   "(read-twice prompting; default false)",
    "repeat_context": "every family but ppl: the context appears this many times, the whole "
                      "prompt still sized to the length (default 1)",
    "chat_template": "every family but ppl: true sizes the prompts for the tokenizer's chat "
                     "template, the answer prefix starting the assistant turn, as lm-eval's "
                     "--apply_chat_template sends them (lc-eval run sets it; default false)",
    "system_instruction": "the system instruction lm-eval's --system_instruction adds, counted "
                          "in the prompt's size (lc-eval run sets it; default none)",
}
MAX_QUERIES = 8  # kvrecall: what max_gen_toks leaves room for
MAX_DISTRACTORS = 4  # niah_latent: every association kind has this many other targets
# Keys that reach the tasks beside the options: the tokenizer, and model arguments of lm-eval's
# models (lm-eval merges --model_args into the metadata). They are never "misspelt options".
NOT_OPTIONS = frozenset({
    "tokenizer", "pretrained", "model", "dtype", "device", "batch_size", "max_batch_size",
    "max_length", "revision", "subfolder", "trust_remote_code", "parallelize", "peft", "delta",
    "backend", "add_bos_token", "use_fast_tokenizer", "chunk_size", "verify", "base_url",
    "num_concurrent", "max_retries", "tokenized_requests", "max_model_len", "max_seq_len",
    "gpu_memory_utilization", "tensor_parallel_size", "data_parallel_size", "quantization",
    "max_gen_toks", "think_end_token", "enable_thinking", "load_in_8bit", "load_in_4bit",
    "attn_implementation", "device_map", "max_memory_per_gpu", "max_cpu_memory",
    "offload_folder", "gguf_file", "autogptq", "gptqmodel", "truncation", "logits_cache",
    "softmax_dtype", "mixed_precision_dtype", "prefix_token_id", "tp_plan", "chat_template_args",
})


def check_option_names(options: dict[str, Any]) -> None:
    """Refuse a key that is not an option but looks like one (``hops`` for ``num_hops``)."""
    for key in options:
        if key in OPTIONS or key in NOT_OPTIONS:
            continue
        near = closest(key, OPTIONS, cutoff=0.6) or [
            o for o in OPTIONS if len(key) >= 4 and (o.endswith(key) or o.startswith(key))]
        if near:
            raise UsageError(f"unknown option {key!r} (did you mean {near[0]!r}?); the options "
                             f"are {', '.join(OPTIONS)}")


@dataclass(frozen=True)
class TaskSpec:
    """One task: a family at a length, with its options."""

    family: str
    length: int  # target L, tokens: prompt + max_gen_toks + reserve <= L
    num_samples: int = 100
    depths: tuple[float, ...] = DEFAULT_DEPTHS
    haystack: str | None = None  # None: the family's default
    haystack_split: str = "train"
    haystack_column: str = "text"
    reserve: int = 0
    qa_source: str | None = None  # QA families: the dataset file or hf: name
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    distances: tuple[int, ...] | None = None  # kvrecall: tokens before the question
    query_first: bool = False  # read-twice: the question before the context too
    repeat_context: int = 1  # read-twice: copies of the context
    gen_toks: int | None = None  # max_gen_toks when not the family's (the copy sweep)
    chat_template: bool = False  # sized for the tokenizer's chat template (lc_tasks.chat)
    system_instruction: str | None = None  # lm-eval's --system_instruction, counted in the size
    # apply_chat_template's extra arguments: hf's chat_template_args and enable_thinking
    chat_template_args: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def info(self) -> Family:
        return FAMILIES[self.family]

    @property
    def max_gen_toks(self) -> int:
        """The task's ``max_gen_toks``: the family's, or the copy sweep point's."""
        return self.info.max_gen_toks if self.gen_toks is None else self.gen_toks

    @property
    def budget(self) -> int:
        """Most prompt tokens allowed."""
        return self.length - self.max_gen_toks - self.reserve


def _int(name: str, value: Any, minimum: int) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"option {name}={value!r} must be an integer >= {minimum}") from None
    if out < minimum or isinstance(value, bool) or (isinstance(value, float) and value != out):
        raise UsageError(f"option {name}={value!r} must be an integer >= {minimum}")
    return out


def _depths(value: Any) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value):
        k = _int("depths", value, 1)
        return tuple(round(100 * i / (k - 1), 4) if k > 1 else 50.0 for i in range(k))
    if isinstance(value, str):
        parts = [p for p in re.split(r"[\s,;]+", value.strip("[]() ")) if p]
        if len(parts) == 1 and re.fullmatch(r"\d+(\.\d*)?", parts[0]):
            return _depths(float(parts[0]) if "." in parts[0] else int(parts[0]))
        value = parts
    try:
        out = tuple(float(d) for d in value)
    except (TypeError, ValueError):
        raise UsageError(f"option depths={value!r} must be a count of levels or a list of "
                         "percents, e.g. 11 or [0, 50, 100]") from None
    if not out or any(not 0 <= d <= 100 for d in out):
        raise UsageError(f"option depths={value!r}: give one or more percents in [0, 100]")
    return out


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise UsageError(f"option {name}={value!r} must be true or false")


def _distances(value: Any) -> tuple[int, ...]:
    parts = re.split(r"[\s,;]+", value.strip("[]() ")) if isinstance(value, str) else (
        value if isinstance(value, (list, tuple)) else [value])
    out = tuple(_int("distances", p, 0) for p in parts if p != "")
    if not out:
        raise UsageError(f"option distances={value!r}: give one or more token counts, "
                         "e.g. [100, 1000]")
    return out


def _kvrecall_params(params: dict, options: dict[str, Any], sweep_pairs: Any) -> None:
    if sweep_pairs is not None:
        fixed = _int("pairs", sweep_pairs, 1)
        if options.get("num_pairs") is not None and _int("num_pairs", options["num_pairs"],
                                                         1) != fixed:
            raise UsageError(f"option num_pairs={options['num_pairs']!r} conflicts with this "
                             f"task's {fixed} pairs; drop num_pairs, or run lc_kvrecall_<len> "
                             "with it")
        params["num_pairs"] = fixed
    elif options.get("num_pairs") is not None:
        params["num_pairs"] = _int("num_pairs", options["num_pairs"], 1)
    values = 9 * 10 ** (params["value_digits"] - 1)  # distinct values of that many digits
    if params["num_pairs"] > values:
        raise UsageError(f"option num_pairs={params['num_pairs']} is more than the {values} "
                         f"distinct {params['value_digits']}-digit values; ask for fewer pairs")
    if options.get("num_queries") is not None:
        params["num_queries"] = _int("num_queries", options["num_queries"], 1)
    if params["num_queries"] > min(params["num_pairs"], MAX_QUERIES):
        raise UsageError(f"option num_queries={params['num_queries']} must be at most "
                         f"num_pairs ({params['num_pairs']}) and at most {MAX_QUERIES}")


def _swept(name: str, options: dict[str, Any], fixed: Any, minimum: int = 1) -> int | None:
    """The count a sweep task fixes, or the option's; the two may not disagree."""
    given = options.get(name)
    if fixed is None:
        return None if given is None else _int(name, given, minimum)
    count = _int(name, fixed, minimum)
    if given is not None and _int(name, given, minimum) != count:
        raise UsageError(f"option {name}={given!r} conflicts with this task's {count}; drop "
                         f"{name}, or run the task without the suffix with it")
    return count


def _new_family_params(info: Family, params: dict, options: dict[str, Any],
                       sweep_words: Any, sweep_ops: Any) -> int | None:
    """Options of copy, latent and statetrack; returns copy's max_gen_toks (None: the
    family's)."""
    if info.kind == "copy":
        cap = _int("copy_words", sweep_words, 1) if sweep_words is not None else (
            params["copy_words"])
        words = _swept("copy_words", options, sweep_words)
        if words is not None and words > cap:
            raise UsageError(f"option copy_words={words} is more than the {cap} words that "
                             f"lc_{info.name}'s max_gen_toks covers; run a sweep task "
                             f"lc_copy_<len>_w<N> with N >= {words} (at 4k or 16k), or fewer "
                             "words")
        params["copy_words"] = cap if words is None else words
        return copy_gen_toks(cap) if cap != info.params["copy_words"] else None
    if info.kind == "latent":
        params["literal"] = _bool("literal", options.get("literal", params["literal"]))
        if options.get("num_distractors") is not None:
            params["num_distractors"] = _int("num_distractors", options["num_distractors"], 0)
        if params["num_distractors"] > MAX_DISTRACTORS:
            raise UsageError(f"option num_distractors={params['num_distractors']} must be at "
                             f"most {MAX_DISTRACTORS}")
    if info.kind == "statetrack":
        ops = _swept("num_ops", options, sweep_ops)
        if ops is not None:
            params["num_ops"] = ops
        params["parity"] = _bool("parity", options.get("parity", params["parity"]))
    return None


def _read_twice(info: Family, options: dict[str, Any]) -> tuple[bool, int]:
    query_first = _bool("query_first", options.get("query_first", False))
    repeat = _int("repeat_context", options.get("repeat_context", 1), 1)
    if (query_first or repeat > 1) and info.kind not in READ_TWICE_KINDS:
        asked = "query_first" if query_first else "repeat_context"
        raise UsageError(f"option {asked} applies to the families that ask about a context, "
                         f"not to lc_{info.name}, which scores documents; run it without")
    return query_first, repeat


def _chat(info: Family, options: dict[str, Any]) -> tuple[bool, str | None, dict]:
    """The chat options: (chat_template, system_instruction, apply_chat_template's kwargs)."""
    chat = _bool("chat_template", options.get("chat_template", False))
    system = options.get("system_instruction")
    if system is not None and not isinstance(system, str):
        raise UsageError(f"option system_instruction={system!r} must be a string")
    if (chat or system) and info.kind == "ppl":
        raise UsageError(f"lc_{info.name} scores a document's own text, so a chat template or a "
                         "system instruction does not apply; run it without "
                         "--apply_chat_template and --system_instruction")
    extra = options.get("chat_template_args") or {}
    if not isinstance(extra, dict):
        raise UsageError(f"model arg chat_template_args={extra!r} must be a JSON object")
    extra = dict(extra)
    if options.get("enable_thinking") is not None:  # as lm-eval's hf passes it on
        extra["enable_thinking"] = _bool("enable_thinking", options["enable_thinking"])
    return chat, system or None, extra


def task_spec(family: str, length: int, *, sweep_pairs: Any = None, sweep_words: Any = None,
              sweep_ops: Any = None, **options: Any) -> TaskSpec:
    """Build and check a ``TaskSpec`` from lm-eval metadata (extra keys ignored).

    ``sweep_pairs``, ``sweep_words`` and ``sweep_ops`` come from the YAML of a sweep task
    (``lc_kvrecall_<len>_p<N>``, ``lc_copy_<len>_w<N>``, ``lc_statetrack_<len>_o<N>``), not the
    user.
    """
    if family not in FAMILIES:
        raise UsageError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    check_option_names(options)
    info = FAMILIES[family]
    length = _int("length", length, 1)
    params = dict(info.params)
    if info.kind == "vt":
        for key in ("num_hops", "num_chains"):
            if options.get(key) is not None:
                params[key] = _int(key, options[key], 1)
    distances = None
    if info.kind == "kvrecall":
        _kvrecall_params(params, options, sweep_pairs)
        if options.get("distances") is not None:
            distances = _distances(options["distances"])
    gen_toks = _new_family_params(info, params, options, sweep_words, sweep_ops)
    query_first, repeat = _read_twice(info, options)
    chat, system, template_args = _chat(info, options)
    haystack = options.get("haystack")
    if haystack is not None and not isinstance(haystack, str):
        raise UsageError(f"option haystack={haystack!r} must be a string: 'noise', 'prose', a "
                         "text file's path or 'hf:<dataset>'")
    spec = TaskSpec(
        family=family,
        length=length,
        num_samples=_int("num_samples", options.get("num_samples", info.num_samples), 1),
        depths=_depths(options["depths"]) if options.get("depths") is not None
        else DEFAULT_DEPTHS,
        haystack=haystack,
        haystack_split=str(options.get("haystack_split") or "train"),
        haystack_column=str(options.get("haystack_column") or "text"),
        reserve=_int("reserve", options.get("reserve", 0), 0),
        qa_source=_qa_source(info, options),
        params=MappingProxyType(params),
        distances=distances,
        query_first=query_first,
        repeat_context=repeat,
        gen_toks=gen_toks,
        chat_template=chat,
        system_instruction=system,
        chat_template_args=MappingProxyType(template_args),
    )
    if distances is not None:  # the asked pair's depth: that many tokens before the end
        if options.get("depths") is not None:
            raise UsageError("options depths and distances both place the asked pair; give "
                             "one of them")
        hay = max(spec.budget, 1) / repeat  # tokens of the last copy of the context
        spec = replace(spec, depths=tuple(round(100 * max(0.0, 1 - d / hay), 4)
                                          for d in distances))
    if spec.budget < 1:
        raise UsageError(
            f"lc_{family} at {length} tokens leaves no room for a prompt after "
            f"max_gen_toks={spec.max_gen_toks} and reserve={spec.reserve}"
        )
    return spec


def _qa_source(info: Family, options: dict[str, Any]) -> str | None:
    if info.kind != "qa":
        return None
    value = options.get(info.params["dataset"])
    if value is not None and not isinstance(value, str):
        raise UsageError(f"option {info.params['dataset']}={value!r} must be a path or "
                         "'hf:<dataset>'")
    return value


def seed_option(options: dict[str, Any]) -> int:
    """The ``seed`` option (default 42, RULER's)."""
    return _int("seed", options.get("seed", 42), 0)
