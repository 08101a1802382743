"""The project's tokenizer: byte-level BPE, 4096 tokens, trained on the pretraining mixture.

Byte-level BPE (GPT-2 style) maps every UTF-8 byte to a symbol before merging, so any text
round-trips exactly: decode(encode(x)) == x. The merges are learnt with the `tokenizers`
library on an equal number of bytes from every domain's pretrain split, so no domain is
tokenised much worse than another because it was under-represented. One special token,
`<|endoftext|>` (id 0), serves as end-of-document, beginning-of-sequence and padding.

Saved as a `PreTrainedTokenizerFast` in `data/tokenizer/`, loadable offline with
`transformers.AutoTokenizer.from_pretrained("data/tokenizer")`.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path

from scalinglaws.core import paths
from scalinglaws.core.validation import check_int

EOS = "<|endoftext|>"
VOCAB_SIZE = 4096
MODEL_MAX_LENGTH = 2048  # longest context any of our models uses; a bound for warnings only


def tokenizer_dir(data_dir: Path | None = None) -> Path:
    return paths.TOKENIZER_DIR if data_dir is None else Path(data_dir) / "tokenizer"


def train_tokenizer(texts_by_domain: dict[str, list[str]], vocab_size: int = VOCAB_SIZE,
                    out_dir: Path | None = None, bytes_per_domain: int | None = None):
    """Train byte-level BPE on an equal-bytes mixture and save it to `out_dir`.

    texts_by_domain: domain -> documents (`data build` passes every domain's pretrain split).
    bytes_per_domain: UTF-8 bytes taken from each domain, whole documents in file order
      (default: the smallest domain's total, so every domain contributes the same amount).
    Returns the `PreTrainedTokenizerFast`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    check_int("vocab_size", vocab_size, minimum=257, maximum=65535)  # uint16 token ids
    sizes = {d: sum(len(t.encode("utf-8")) for t in texts) for d, texts in texts_by_domain.items()}
    cap = min(sizes.values()) if bytes_per_domain is None else check_int("bytes_per_domain", bytes_per_domain, 1)
    mixture = []
    for domain, texts in texts_by_domain.items():
        used = 0
        for t in texts:
            n = len(t.encode("utf-8"))
            if used + n > cap:
                break
            mixture.append(t)
            used += n

    tok = Tokenizer(models.BPE())
    # add_prefix_space=False keeps the round trip exact (no space invented before a text).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(mixture, trainer=trainer, length=len(mixture))

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS,
                                   unk_token=EOS, model_max_length=MODEL_MAX_LENGTH,
                                   clean_up_tokenization_spaces=False)
    out = Path(out_dir) if out_dir is not None else tokenizer_dir()
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    # transformers 5 writes its new class name; the classic name loads in 4.x and 5.x alike.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    load_tokenizer.cache_clear()
    return fast


@functools.lru_cache(maxsize=4)
def _load(path: str):
    from transformers import PreTrainedTokenizerFast
    if not (Path(path) / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer in {path}; run `python -m scalinglaws data build`")
    return PreTrainedTokenizerFast.from_pretrained(path)


def load_tokenizer(path: Path | None = None):
    """The trained tokenizer (cached per process). `path` defaults to data/tokenizer."""
    return _load(str(Path(path) if path is not None else tokenizer_dir()))


load_tokenizer.cache_clear = _load.cache_clear


def eos_id(path: Path | None = None) -> int:
    return load_tokenizer(path).convert_tokens_to_ids(EOS)


def encode_batch(texts: Iterable[str], path: Path | None = None) -> list[list[int]]:
    """Token ids of each text (no special tokens), via the Rust tokenizer (batched, fast)."""
    backend = load_tokenizer(path).backend_tokenizer
    return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]
