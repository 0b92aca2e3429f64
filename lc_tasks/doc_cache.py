"""A cache of generated docs on disk: the second run of a task loads its docs instead of
building them again.

One folder per task build (``<root>/docs/<key>/``), one file per doc. The key is a hash of
everything a doc depends on: the family, length and every option of the task spec (not the
doc count: doc i is the same whatever the count), the seed, the generator version, and a
fingerprint of the tokenizer's *content* (vocabulary, merges, normalizer, special tokens; not
its path). Each file holds the doc and the sizing hints the generator carried past it, so a
later, longer build continues from doc k exactly as one full build would.

* **Location:** ``$LC_EVAL_CACHE/docs``, default ``~/.cache/lc-eval/docs``;
  ``LC_EVAL_CACHE=off`` turns the cache off.
* **Integrity:** a file starts with the SHA-256 of its payload; a corrupt or truncated file
  does not match and is rebuilt, never trusted.
* **Atomic writes:** a doc is written to a temporary file and renamed into place, so
  processes sharing the cache (``accelerate launch``) never read a half-written doc.

>>> import tempfile
>>> cache = DocCache(tempfile.mkdtemp(), {"family": "passkey", "length": 1024})
>>> cache.put(0, {"input": "The pass key is 12345."}, hints=[1.5])
>>> cache.get(0)
({'input': 'The pass key is 12345.'}, [1.5])
>>> cache.get(1) is None
True
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["DocCache", "cache_root", "tokenizer_fingerprint"]

OFF = ("off", "0", "false", "no")


def cache_root() -> Path | None:
    """lc-eval's cache folder (``$LC_EVAL_CACHE``, else ``~/.cache/lc-eval``), or None if off."""
    value = os.environ.get("LC_EVAL_CACHE", "")
    if value.lower() in OFF:
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "lc-eval"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of what a tokenizer computes: its class, its whole ``tokenizers`` definition
    (vocabulary, merges, normalizer, pre-tokenizer, post-processor, added tokens) or, for a
    Python tokenizer, its vocabulary, and its special tokens. Two copies of one tokenizer in
    different folders have the same fingerprint."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    specials = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    digest.update(json.dumps(specials).encode())
    digest.update(str(getattr(tokenizer, "add_bos_token", None)).encode())
    return digest.hexdigest()


class DocCache:
    """The cached docs of one task build, keyed by ``key`` (a JSON-able dict)."""

    def __init__(self, root: str | Path, key: dict[str, Any]):
        text = json.dumps(key, sort_keys=True, default=str)
        self.folder = Path(root) / "docs" / hashlib.sha256(text.encode()).hexdigest()[:32]
        self._key = text
        self.hits = self.built = 0  # docs served and docs stored, for the log line

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:07d}.json"

    def get(self, index: int) -> tuple[dict, list] | None:
        """(doc, hints after it) of doc ``index``, or None if absent or not intact."""
        try:
            data = self._path(index).read_bytes()
        except OSError:
            return None
        digest, _, payload = data.partition(b"\n")
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            return None  # truncated or corrupt: rebuilt by the caller
        try:
            entry = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        if entry.get("key") != self._key:  # a hash collision of the folder name, or a stray file
            return None
        self.hits += 1
        return entry["doc"], entry["hints"]

    def put(self, index: int, doc: dict, hints: list) -> None:
        """Store doc ``index`` atomically (a failure to write only costs a rebuild later)."""
        payload = json.dumps({"key": self._key, "doc": doc, "hints": hints},
                             ensure_ascii=False).encode()
        data = hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
        self.built += 1
        target = self._path(index)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, target)  # atomic: readers see the old file, the new one, or none
        except OSError:
            tmp.unlink(missing_ok=True)
