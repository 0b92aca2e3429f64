"""A cache of generated docs on disk: the second run of a task loads its docs instead of
building them again.

One folder per task build (``<root>/docs/<key>/``), one file per doc. The key is a hash of
everything a doc depends on: the family, length and every option of the task spec (not the
doc count: doc i is the same whatever the count), the seed, the generator version, and a
fingerprint of the tokenizer's *content* (vocabulary, merges, normalizer, special tokens; not
its path). Each file holds the doc and the sizing hints the generator carried past it, so a
later, longer build continues from doc k exactly as one full build would.

* **Location:** ``$LC_EVAL_CACHE/docs``, default ``~/.cache/lc-eval/docs``;
  ``LC_EVAL_CACHE=off`` turns the cache off. A file there is a UsageError; a folder that cannot
  be written (read-only) still serves its docs, and new ones are built without being kept,
  with one warning line.
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
import logging
import os
from pathlib import Path
from typing import Any

from lc_tasks.errors import UsageError

__all__ = ["DocCache", "cache_root", "tokenizer_fingerprint"]

OFF = ("off", "0", "false", "no")
log = logging.getLogger("lm_eval.lc_tasks")
_unwritable: set[Path] = set()  # cache folders already warned about, once per process


def cache_root(value: str | None = None) -> Path | None:
    """lc-eval's cache folder (``value``, default ``$LC_EVAL_CACHE``, else
    ``~/.cache/lc-eval``), or None if off; a path that is, or lies under, a file is a
    UsageError."""
    value = os.environ.get("LC_EVAL_CACHE", "") if value is None else value
    if value.lower() in OFF:
        return None
    root = Path(value).expanduser() if value else Path.home() / ".cache" / "lc-eval"
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == root else f" (under {existing}, a file)"
        raise UsageError(f"LC_EVAL_CACHE={str(root)!r} is not a folder{where}; point it at a "
                         "folder (it is created if missing), or set LC_EVAL_CACHE=off")
    return root


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
        except OSError as err:  # read-only, full, or gone: the doc is still returned
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            root = self.folder.parent.parent
            if root not in _unwritable:
                _unwritable.add(root)
                log.warning("lc-eval: the doc cache %s cannot be written (%s); docs are built "
                            "but not kept: set LC_EVAL_CACHE to a writable folder, or off",
                            root, err.strerror or err)
