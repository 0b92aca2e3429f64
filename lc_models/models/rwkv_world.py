"""The RWKV World tokenizer (``rwkv_vocab_v20230424``) as a transformers tokenizer.

RWKV-5/6/7 World models tokenize by greedy longest match over UTF-8 bytes against a
65,529-token vocabulary; id 0 is end-of-text. No ``tokenizers`` file expresses a greedy longest
match, and the HF checkpoints ship it as remote code. This module wraps the matcher and the
vocabulary of BlinkDL's own ``rwkv`` package (``rwkv.rwkv_tokenizer.TRIE_TOKENIZER``, the code
RWKV's authors maintain) in a ``transformers`` Python tokenizer, so that lm-eval's ``hf``
tokenization path and the lc-eval tasks use it like any other tokenizer.

Token strings are the token's bytes read as Latin-1 (one character per byte), so that every
token, including partial UTF-8 sequences, is a distinct, reversible string.

>>> tok = world_tokenizer()  # doctest: +SKIP
>>> tok("Hello world").input_ids  # doctest: +SKIP
[33155, 40213]
>>> tok.decode([33155, 40213])  # doctest: +SKIP
'Hello world'
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from transformers import PreTrainedTokenizer

# What users pass as ``tokenizer=`` to name it, and the vocabulary file's name in checkpoints.
NAME = "rwkv_vocab_v20230424"
VOCAB_FILE = f"{NAME}.txt"
END_OF_TEXT = "<|endoftext|>"  # id 0
# tokenizer classes of the HF RWKV repositories' remote code that this tokenizer replaces
REMOTE_CLASSES = ("Rwkv5Tokenizer", "Rwkv6Tokenizer", "RWKVWorldTokenizer", "RwkvWorldTokenizer")


@lru_cache(maxsize=1)
def _matcher():
    """BlinkDL's trie over the packaged vocabulary (built once per process, ~4 s)."""
    import rwkv
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

    return TRIE_TOKENIZER(str(Path(rwkv.__file__).parent / VOCAB_FILE))


class RwkvWorldTokenizer(PreTrainedTokenizer):
    """Greedy longest-match byte tokenizer of RWKV World models (see the module docstring)."""

    model_input_names = ("input_ids", "attention_mask")

    def __init__(self, **kwargs):
        self._trie = _matcher()
        # id -> token string (bytes as Latin-1), and back
        self._id_to_token = {0: END_OF_TEXT}
        self._id_to_token.update(
            {i: raw.decode("latin-1") for i, raw in self._trie.idx2token.items()}
        )
        self._token_to_id = {t: i for i, t in self._id_to_token.items()}
        for name in ("bos_token", "eos_token", "unk_token", "pad_token"):
            kwargs.setdefault(name, END_OF_TEXT)
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        kwargs.setdefault("name_or_path", NAME)
        super().__init__(**kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._token_to_id)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        ids = self._trie.encodeBytes(text.encode("utf-8"))
        return [self._id_to_token[i] for i in ids]

    def _convert_token_to_id(self, token: str) -> int:
        return self._token_to_id.get(token, 0)

    def _convert_id_to_token(self, index: int) -> str:
        return self._id_to_token.get(index, END_OF_TEXT)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).encode("latin-1").decode("utf-8", errors="replace")

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        # World models add nothing around a text (no BOS, no EOS)
        return token_ids_0 + (token_ids_1 or [])

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None):
        return ()  # the vocabulary ships with the `rwkv` package; nothing to write


def is_world_tokenizer(name: str) -> bool:
    """Whether ``name`` means the World tokenizer: its name, or a local folder whose tokenizer
    files (``rwkv_vocab_v20230424.txt``, or a tokenizer_config.json naming one of the HF
    repositories' remote-code classes or ours) are the World vocabulary."""
    if name in (NAME, VOCAB_FILE):
        return True
    folder = Path(name)
    if not folder.is_dir():
        return False
    if (folder / VOCAB_FILE).is_file():
        return True
    config = folder / "tokenizer_config.json"
    if config.is_file():
        cls = json.loads(config.read_text()).get("tokenizer_class") or ""
        return cls in (*REMOTE_CLASSES, RwkvWorldTokenizer.__name__)
    return False


@lru_cache(maxsize=1)
def world_tokenizer() -> RwkvWorldTokenizer:
    """The World tokenizer (one shared instance per process)."""
    return RwkvWorldTokenizer()
