"""A word-level tokenizer over a domain's template vocabulary (docs/INTERFACES.md, "Tokens and sequences").

The vocabulary is enumerated, not learned: every word and punctuation mark of the templates plus every number
word a value can take, so it is deterministic and never emits `<unk>` on domain text. Words and single
punctuation marks are separate tokens ("03:45" -> 03 : 45, "top-left" -> top - left, "60%" -> 60 %);
`detokenize` joins them back into the text the scorers parse.
"""

from __future__ import annotations

import re
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from unified.data.domains import get_domain

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>", "<img_in>", "<img_out>", "<usr>", "<ans>", "<boi>", "<eoi>")
WORD = r"\w+|[^\w\s]"  # a word, or one punctuation mark
NUMBERS = [str(i) for i in range(101)] + [f"{i:02d}" for i in range(10)]  # battery 0..100, "00".."09" in times
NO_SPACE_BEFORE = {",", ".", "?", "!", "%", ":", "-", "'"}
NO_SPACE_AFTER = {":", "-", "'"}


def build_tokenizer(domain: str, path: str = "") -> PreTrainedTokenizerFast:
    """The domain's tokenizer, or the one saved in the local directory `path` (paper scale: the checkpoint's own
    subword tokenizer). Our sequence markers (`<img_in>`, `<ans>`, ...) are added to a loaded tokenizer that
    lacks them, after its own ids, so a checkpoint's embedding rows keep their meaning."""
    if path:
        tok = PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
        missing = [s for s in SPECIALS if s not in tok.get_vocab()]
        if missing:
            tok.add_special_tokens({"additional_special_tokens": missing})
        if tok.pad_token is None:
            tok.pad_token = "<pad>"
        return tok
    words = set(NUMBERS)
    for text in get_domain(domain).vocabulary_texts():
        words.update(re.findall(WORD, text.lower()))
    vocab = {tok: i for i, tok in enumerate(list(SPECIALS) + sorted(words))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence(  # split on spaces, then isolate each punctuation mark
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"[^\w\s]"), behavior="isolated")])
    tk.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        additional_special_tokens=list(SPECIALS[4:]),
    )


def special_ids(tok) -> dict[str, int]:
    """'<ans>' -> id for every special token (the names keep their brackets)."""
    return {name: tok.convert_tokens_to_ids(name) for name in SPECIALS}


def save_tokenizer(tok, directory: str | Path) -> None:
    tok.save_pretrained(str(directory))


def encode(tok, texts: list[str]) -> list[list[int]]:
    """Token ids of plain texts, no special tokens added. Calls the Rust tokenizer directly: a trial encodes
    tens of thousands of short texts, and the transformers wrapper costs more than the tokenization itself."""
    backend = tok.backend_tokenizer
    return [backend.encode(text, add_special_tokens=False).ids for text in texts]


def is_word_level(tok) -> bool:
    return type(tok.backend_tokenizer.model).__name__ == "WordLevel"


def detokenize(tok, ids) -> str:
    """Ids -> text, stopping at `<eos>` and dropping special tokens. Our word-level tokens are joined with the
    punctuation re-attached ("03:45", "60%"); any other tokenizer decodes with its own `decode` (a BPE's "Ġ"
    markers and split digits are its business, not ours)."""
    specials = special_ids(tok)
    if not is_word_level(tok):
        ids = [int(i) for i in ids]
        ids = ids[: ids.index(specials["<eos>"])] if specials["<eos>"] in ids else ids
        return tok.decode(ids, skip_special_tokens=True).strip()
    words = []
    for i in (int(i) for i in ids):
        if i == specials["<eos>"]:
            break
        if i not in specials.values():
            words.append(tok.convert_ids_to_tokens(i))
    text = ""
    for k, w in enumerate(words):
        glue = k == 0 or w in NO_SPACE_BEFORE or words[k - 1] in NO_SPACE_AFTER
        text += w if glue else " " + w
    return text
