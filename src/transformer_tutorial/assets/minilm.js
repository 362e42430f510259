// The book's MiniLM (all-MiniLM-L6-v2 exported from our own encoder by
// transformer_tutorial.browser_model) running in the reader's browser with onnxruntime-web.
//
// Loaded only when the reader asks: `const model = await loadMiniLM(siteRoot, onProgress)`
// fetches the runtime (from the site's _vendor/onnxruntime-web/, never a CDN), the model and
// the vocabulary, reporting {loaded, total} bytes; `await model.run(text)` returns
// {ids, tokens, attentions (Float32Array, [layers, heads, n, n]), hidden (Float32Array,
// [layers + 1, n, d_model]), layers, heads, n, dModel, ms}.
//
// The analyses of chapter 7 mirror the package's Python functions of the same names
// (transformer_tutorial.probing, pretrained, chapters.ch07_stacking): attentionBetween, strongestHeads,
// contextualVectors, similarityByLayer (and MiniLMModel.similarityByLayer for anchors);
// layerHeadsFrame, strongestHeadsFrame and similarityFrame give frames in the format of
// assets/EXPLORER_DATA.md for explorer.js to draw; analysesView puts the last two under
// chapter 7's explorer for the reader's sentence.
//
// Failures are MiniLMError with a `kind`: "file" (opened from file://), "text" (rejected as
// the Python side rejects it), "too-long" (over the page's token limit: never cut silently),
// "unknown" (characters the vocabulary reads as [UNK]), "word" (a word not in the tokens),
// "load" (the files could not be fetched).

import { WordPiece, checkText, unknownMessage } from "./wordpiece.js";

export const MODEL_PATH = "_models/minilm/";
export const RUNTIME_PATH = "_vendor/onnxruntime-web/";
const RUNTIME_MODULE = "ort.wasm.min.mjs";
const RUNTIME_WASM = "ort-wasm-simd-threaded.wasm";
// What a page opened from file:// says instead (the page holds it: from file:// this module
// cannot even be imported) is transformer_tutorial.browser_model.FILE_PROTOCOL_MESSAGE.

export class MiniLMError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "MiniLMError";
    this.kind = kind;
  }
}

/** Whether the page can load the model: modules and fetch need http(s), not file://. */
export function canLoadModel(location = globalThis.location) {
  return location?.protocol === "http:" || location?.protocol === "https:";
}

/** IEEE half-precision little-endian bytes -> the float32 values' bytes (the graph's weights). */
export function float16ToFloat32(bytes) {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h += 1) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) table[h] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) table[h] = fraction ? NaN : sign * Infinity;
    else table[h] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  const half = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i += 1) out[i] = table[half[i]];
  return new Uint8Array(out.buffer);
}

async function fetchBytes(url, onChunk) {
  const response = await fetch(url);
  if (!response.ok) throw new MiniLMError("load", `could not fetch ${url}: HTTP ${response.status}`);
  const length = Number(response.headers.get("Content-Length")) || null;
  if (!response.body) {
    const buffer = new Uint8Array(await response.arrayBuffer());
    onChunk(buffer.length, length);
    return buffer;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    onChunk(value.length, length);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Load MiniLM: `siteRoot` is the URL (or path relative to the page) of the built book's root;
 * `onProgress({loaded, total, done})` is called as bytes arrive (total: model + vocabulary from
 * manifest.json, plus the runtime's wasm as the server declares it).
 */
export async function loadMiniLM(siteRoot, onProgress = () => {}, sessionOptions = {}) {
  if (!canLoadModel()) {
    throw new MiniLMError("file", "the model loads only over http(s): serve the book (`make serve`)");
  }
  const root = new URL(siteRoot, globalThis.location.href);
  const modelUrl = new URL(MODEL_PATH, root);
  const runtimeUrl = new URL(RUNTIME_PATH, root);
  const started = performance.now();
  let manifest;
  try {
    manifest = await (await fetch(new URL("manifest.json", modelUrl))).json();
  } catch (error) {
    throw new MiniLMError("load", `could not read ${MODEL_PATH}manifest.json: ${error.message}`);
  }
  const weights = manifest.weights;
  let total = Object.values(manifest.files).reduce((a, b) => a + b, 0);
  let loaded = 0;
  let wasmCounted = false;
  const report = (bytes, declared, isWasm) => {
    if (isWasm && !wasmCounted && declared) {
      total += declared;
      wasmCounted = true;
    }
    loaded += bytes;
    onProgress({ loaded, total: Math.max(total, loaded), done: false });
  };
  onProgress({ loaded, total, done: false });
  let ort, wasm, model, half, vocab;
  try {
    [ort, wasm, model, half, vocab] = await Promise.all([
      import(new URL(RUNTIME_MODULE, runtimeUrl).href),
      fetchBytes(new URL(RUNTIME_WASM, runtimeUrl), (b, d) => report(b, d, true)),
      fetchBytes(new URL("model.onnx", modelUrl), (b) => report(b, null, false)),
      fetchBytes(new URL(weights.file, modelUrl), (b) => report(b, null, false)),
      fetchBytes(new URL("vocab.txt", modelUrl), (b) => report(b, null, false)),
    ]);
  } catch (error) {
    if (error instanceof MiniLMError) throw error;
    throw new MiniLMError("load", `could not load the model or its runtime: ${error.message}`);
  }
  const fetched = performance.now();
  ort.env.wasm.wasmPaths = runtimeUrl.href; // its default is a CDN
  ort.env.wasm.wasmBinary = wasm.buffer;
  ort.env.wasm.numThreads = 1; // more threads need COOP/COEP headers
  ort.env.wasm.proxy = false;
  const weightsFloat32 = float16ToFloat32(half);
  const widened = performance.now();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    externalData: [{ path: weights.external_data, data: weightsFloat32 }],
    // The exporter already optimized the graph. Measured here (2 loaded cores): "all" made
    // the session about 0.7 s slower to create and runs at 64 tokens about 15% faster; the
    // load-time goal (<= 3 s) is the tighter one.
    graphOptimizationLevel: "disabled",
    ...sessionOptions,
  });
  const tokenizer = new WordPiece(new TextDecoder().decode(vocab), {
    maxInputCharsPerWord: manifest.max_input_chars_per_word,
  });
  onProgress({ loaded, total: Math.max(total, loaded), done: true });
  const now = performance.now();
  return new MiniLMModel(ort, session, tokenizer, manifest, {
    bytes: loaded,
    ms: now - started,
    fetchMs: fetched - started,
    widenMs: widened - fetched,
    sessionMs: now - widened,
  });
}

export class MiniLMModel {
  constructor(ort, session, tokenizer, manifest, loadStats) {
    this.ort = ort;
    this.session = session;
    this.tokenizer = tokenizer;
    this.manifest = manifest;
    this.layers = manifest.layers;
    this.heads = manifest.heads;
    this.dModel = manifest.d_model;
    this.maxTokens = manifest.max_tokens;
    this.loadStats = loadStats;
  }

  /** Mirror of `MiniLM.tokenize`: {ids, tokens}, or a MiniLMError saying what is wrong. */
  tokenize(text) {
    let encoded;
    try {
      encoded = this.tokenizer.encode(checkText(text));
    } catch (error) {
      throw new MiniLMError("text", error.message);
    }
    if (encoded.unknown.length) throw new MiniLMError("unknown", unknownMessage(encoded.unknown));
    const n = encoded.ids.length;
    if (n > this.maxTokens) {
      throw new MiniLMError(
        "too-long",
        `the text has ${n} tokens; the model in this page reads at most ${this.maxTokens} ` +
          "(including [CLS] and [SEP]): shorten it (the notebook, `make lab`, reads up to 512)",
      );
    }
    return { ids: encoded.ids, tokens: encoded.tokens };
  }

  /** Run the encoder on one text: attention of every layer and head, every hidden state. */
  async run(text) {
    const { ids, tokens } = this.tokenize(text);
    const n = ids.length;
    const feeds = {
      input_ids: new this.ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, n]),
      attention_mask: new this.ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
    };
    const started = performance.now();
    const out = await this.session.run(feeds);
    const ms = performance.now() - started;
    const result = {
      text, ids, tokens, n, ms,
      layers: this.layers, heads: this.heads, dModel: this.dModel,
      attentions: out.attentions.data,
      hidden: out.hidden_states.data,
    };
    for (const tensor of Object.values(out)) tensor.dispose?.();
    return result;
  }

  /** Mirror of `MiniLM.contextual_vectors`: `word`'s vector after each layer. */
  async contextualVectors(text, word) {
    return contextualVectors(await this.run(text), word);
  }

  /**
   * The mean, layer by layer, of the `anchors`' vectors ([layers + 1][d_model]), each word read
   * alone as [CLS] anchor [SEP] (as `chapters.ch07_stacking.similarity_to_anchors` reads them); each anchor runs once.
   */
  async anchorMean(anchors) {
    if (!Array.isArray(anchors) || anchors.length === 0) {
      throw new MiniLMError("word", "anchors must be a non-empty list of words");
    }
    this.anchorCache ??= new Map();
    const vectors = [];
    for (const anchor of anchors) {
      if (!this.anchorCache.has(anchor)) {
        this.anchorCache.set(anchor, await this.contextualVectors(anchor, anchor.toLowerCase()));
      }
      vectors.push(this.anchorCache.get(anchor));
    }
    return vectors[0].map((_, l) =>
      vectors[0][l].map((_, d) => vectors.reduce((s, v) => s + v[l][d], 0) / vectors.length),
    );
  }

  /**
   * Mirror of `chapters.ch07_stacking.similarity_to_anchors`: cosine similarity, layer by layer, between `word`
   * in `text` and the mean of the `anchors` (each read alone as [CLS] anchor [SEP]).
   */
  async similarityByLayer(text, word, anchors) {
    const mean = await this.anchorMean(anchors);
    return similarityByLayer(await this.contextualVectors(text, word), mean);
  }
}

// -- The analyses (mirrors of transformer_tutorial.probing) ---------------------------------

/** Mirror of `probing.token_position`: a position is checked, a token string looked up. */
export function tokenPosition(tokens, token) {
  if (typeof token === "number") {
    if (!Number.isInteger(token) || token < 0 || token >= tokens.length) {
      throw new MiniLMError("word", `position must be in [0, ${tokens.length}), got ${token}`);
    }
    return token;
  }
  const index = tokens.indexOf(token);
  if (index < 0) {
    throw new MiniLMError("word", `'${token}' is not one of the tokens [${tokens.join(", ")}]`);
  }
  return index;
}

/** Attention weights of one layer and head, [n][n] (row = query, column = key). */
export function headWeights(result, layer, head) {
  const { n, heads } = result;
  const start = (layer * heads + head) * n * n;
  return Array.from({ length: n }, (_, i) =>
    Array.from(result.attentions.subarray(start + i * n, start + (i + 1) * n)),
  );
}

/** Mirror of `probing.attention_between`: [layers][heads] weights from query to key. */
export function attentionBetween(result, query, key) {
  const i = tokenPosition(result.tokens, query);
  const j = tokenPosition(result.tokens, key);
  const { n, layers, heads } = result;
  return Array.from({ length: layers }, (_, l) =>
    Array.from({ length: heads }, (_, h) => result.attentions[((l * heads + h) * n + i) * n + j]),
  );
}

/** Mirror of `probing.strongest_heads`: the `top` heads giving query -> key the most weight,
 * strongest first, as [{layer, head, weight}] (only in `layer` if given). */
export function strongestHeads(result, query, key, top = 3, layer = null) {
  const weights = attentionBetween(result, query, key);
  if (!Number.isInteger(top) || top < 1) {
    throw new MiniLMError("word", `top must be a positive integer, got ${top}`);
  }
  if (layer !== null && !(Number.isInteger(layer) && layer >= 0 && layer < result.layers)) {
    throw new MiniLMError("word", `layer must be in [0, ${result.layers}), got ${layer}`);
  }
  const layers = layer === null ? [...weights.keys()] : [layer];
  const links = layers.flatMap((l) => weights[l].map((weight, head) => ({ layer: l, head, weight })));
  links.sort((a, b) => b.weight - a.weight); // stable, like Python's sort
  return links.slice(0, top);
}

/** Mirror of `MiniLM.contextual_vectors` on a run: [layers + 1][d_model] for `word`. */
export function contextualVectors(result, word) {
  const p = tokenPosition(result.tokens, word);
  const { n, dModel } = result;
  return Array.from({ length: result.layers + 1 }, (_, l) =>
    Array.from(result.hidden.subarray((l * n + p) * dModel, (l * n + p + 1) * dModel)),
  );
}

/** Mirror of `embeddings.cosine_similarity` for two vectors. */
export function cosineSimilarity(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let d = 0; d < a.length; d += 1) {
    dot += a[d] * b[d];
    na += a[d] * a[d];
    nb += b[d] * b[d];
  }
  if (na === 0 || nb === 0) throw new MiniLMError("word", "cosine similarity is undefined for a zero vector");
  return Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb)));
}

/** Mirror of `chapters.ch07_stacking.similarity_by_layer`: cosine similarity of two [layers][d] arrays. */
export function similarityByLayer(vectors, others) {
  if (vectors.length !== others.length) {
    throw new MiniLMError("word", "vectors and others must have the same number of layers");
  }
  return vectors.map((v, l) => cosineSimilarity(v, others[l]));
}

// -- Frames for explorer.js (assets/EXPLORER_DATA.md) -------------------------------------

/** Four significant digits, as the Python side rounds frame numbers. */
export function round4(x) {
  return Number(Number(x).toPrecision(4));
}

/** Mirror of `chapters.ch07_stacking.MINILM_MAX_GRID_TOKENS`: beyond this the 12 small maps are unreadable. */
export const MAX_GRID_TOKENS = 24;

/**
 * Every head of one layer as a `grid` of heatmaps (row = query, column = key): the frame that
 * `chapters.ch07_stacking.minilm_layer_data` computes in Python, field for field; over `maxTokens` tokens
 * an {error} frame with the Python side's message.
 */
export function layerHeadsFrame(result, layer, maxTokens = MAX_GRID_TOKENS) {
  if (!(Number.isInteger(layer) && layer >= 0 && layer < result.layers)) {
    throw new MiniLMError("word", `layer must be in [0, ${result.layers}), got ${layer}`);
  }
  if (result.n > maxTokens) {
    return {
      error:
        `the sentence has ${result.n} tokens; this view shows at most ${maxTokens}: ` +
        "type a shorter sentence",
    };
  }
  const { tokens, n, heads } = result;
  const weights = Array.from({ length: heads }, (_, h) => headWeights(result, layer, h));
  const word = tokens.map((t) => t !== "[CLS]" && t !== "[SEP]");
  // Share of the attention on [CLS]/[SEP], and the strongest link between two different words.
  let resting = 0;
  let best = { head: 0, weight: -1, i: 0, j: 0 };
  weights.forEach((rows, h) =>
    rows.forEach((row, i) =>
      row.forEach((w, j) => {
        if (!word[j]) resting += w;
        const link = word[i] && word[j] && i !== j ? w : 0;
        if (link > best.weight) best = { head: h, weight: link, i, j };
      }),
    ),
  );
  resting /= heads * n;
  const items = weights.map((rows, h) => ({
    kind: "heatmap",
    title: `head ${h}`,
    rows: tokens,
    cols: tokens,
    values: rows.map((row) => row.map(round4)),
    vmin: 0,
    vmax: 1,
    colormap: "attention",
    row_title: "query: the token that attends",
    col_title: "key: the token attended to",
    digits: 2,
    hover: "'{row}' → '{col}': {value}",
    annotate: false,
  }));
  return {
    title: "",
    description:
      `Layer ${layer}: ${Math.round(100 * resting)}% of the attention rests on [CLS]/[SEP]; ` +
      `the strongest link between two different words is in head ${best.head}: ` +
      `'${tokens[best.i]}' → '${tokens[best.j]}' (${best.weight.toFixed(2)}).`,
    panels: [{
      kind: "grid", title: `MiniLM, layer ${layer}: the ${heads} heads`, items, columns: 2,
      per_page: 4, page_label: "heads",
    }],
  };
}

/** The `top` heads linking query -> key (strongestHeads) as horizontal bars. */
export function strongestHeadsFrame(result, query, key, top = 5) {
  const links = strongestHeads(result, query, key, top);
  const q = result.tokens[tokenPosition(result.tokens, query)];
  const k = result.tokens[tokenPosition(result.tokens, key)];
  return {
    title: `Which heads send '${q}' to '${k}'?`,
    description:
      `The strongest is layer ${links[0].layer}, head ${links[0].head}: ` +
      `${(100 * links[0].weight).toFixed(0)}% of '${q}''s attention goes to '${k}'.`,
    panels: [
      {
        kind: "bars",
        title: `attention from '${q}' to '${k}', strongest ${links.length} of ` +
          `${result.layers * result.heads} heads`,
        labels: links.map((link) => `layer ${link.layer}, head ${link.head}`),
        values: links.map((link) => round4(link.weight)),
        vmin: 0,
        vmax: 1,
        orientation: "horizontal",
        value_title: "attention weight",
        label_title: "head",
        colors: "single",
        highlight: [0],
        digits: 3,
        hover: "{label}: {value}",
      },
    ],
  };
}

/** For each head, the word (not [CLS]/[SEP], not the query itself) that `query` attends to
 * most; the `top` heads with the strongest such link, strongest first, as
 * [{layer, head, key (position), weight}] (ties: the first key, the earlier head). */
export function strongestTargets(result, query, top = 5) {
  const i = tokenPosition(result.tokens, query);
  const { tokens, n, layers, heads } = result;
  const keys = tokens.map((t, j) => j).filter((j) => j !== i && tokens[j] !== "[CLS]" && tokens[j] !== "[SEP]");
  if (keys.length === 0) throw new MiniLMError("word", "the text has no other word to attend to");
  const links = [];
  for (let layer = 0; layer < layers; layer += 1) {
    for (let head = 0; head < heads; head += 1) {
      const row = ((layer * heads + head) * n + i) * n;
      let key = keys[0];
      for (const j of keys) if (result.attentions[row + j] > result.attentions[row + key]) key = j;
      links.push({ layer, head, key, weight: result.attentions[row + key] });
    }
  }
  links.sort((a, b) => b.weight - a.weight); // stable
  return links.slice(0, top);
}

/** `strongestTargets` as horizontal bars: which heads send `query`'s attention to which word. */
export function strongestTargetsFrame(result, query, top = 5) {
  const links = strongestTargets(result, query, top);
  const q = result.tokens[tokenPosition(result.tokens, query)];
  const word = (link) => result.tokens[link.key];
  return {
    title: `Where do the heads send '${q}''s attention?`,
    description:
      `The strongest is layer ${links[0].layer}, head ${links[0].head}: ` +
      `${(100 * links[0].weight).toFixed(0)}% of '${q}''s attention goes to '${word(links[0])}'.`,
    panels: [
      {
        kind: "bars",
        title: `attention from '${q}' to its strongest other word, strongest ${links.length} of ` +
          `${result.layers * result.heads} heads`,
        labels: links.map((link) => `layer ${link.layer}, head ${link.head} → '${word(link)}'`),
        values: links.map((link) => round4(link.weight)),
        vmin: 0,
        vmax: 1,
        orientation: "horizontal",
        value_title: "attention weight",
        label_title: "head → word",
        colors: "single",
        highlight: [0],
        digits: 3,
        hover: "{label}: {value}",
      },
    ],
  };
}

/** Named similarity curves ({name: [layers + 1]}) over the layers, as in `layer_curves`. */
export function similarityFrame(curves, word) {
  const names = Object.keys(curves);
  if (names.length === 0) throw new MiniLMError("word", "curves must hold at least one curve");
  const styles = ["solid", "dashed", "points"];
  const length = curves[names[0]].length;
  const last = names.map((name) => `${name} ${curves[name][length - 1].toFixed(2)}`);
  return {
    title: `'${word}' in context, layer by layer`,
    description: `Cosine similarity after the last layer: ${last.join("; ")}.`,
    panels: [
      {
        kind: "lines",
        title: "",
        x: Array.from({ length }, (_, l) => l),
        series: names.map((name, s) => ({
          name,
          y: curves[name].map(round4),
          style: styles[s % styles.length],
        })),
        x_title: "layer (0 = input embeddings)",
        y_title: "cosine similarity",
        ymin: Math.min(0, ...names.flatMap((name) => curves[name])),
        ymax: 1,
        digits: 3,
      },
    ],
  };
}

// -- Chapter 7's analyses of the reader's sentence, under the explorer ---------------------

const ANCHORS = ["microsoft, google, samsung, intel", "banana, orange, pear"]; // the notebook's
const ANY = "any"; // the "to" select's value for each head's strongest word

/** Words of a comma-separated list (the anchors a reader types). */
export function anchorList(text) {
  const words = String(text).split(",").map((w) => w.trim()).filter(Boolean);
  if (words.length === 0) throw new MiniLMError("word", "anchors must be a non-empty list of words");
  return words;
}

function node(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

// One analysis: a title, controls, and a figure drawn by the page's renderer with its own
// readout (hover) and an aria-live status line holding the frame's description.
function panel(section, title, draw) {
  const box = node("div", "tt-analysis");
  box.style.marginBottom = "1.5em";
  const controls = node("div", "tt-explorer-controls");
  const frameTitle = node("div", "tt-explorer-frame-title");
  const figure = node("div", "tt-explorer-figure");
  const readout = node("div", "tt-explorer-readout");
  const status = node("div", "tt-analysis-status tt-explorer-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  box.append(node("div", "tt-explorer-title", title), controls, frameTitle, figure, readout, status);
  section.appendChild(box);
  const state = { readout };
  return {
    box, controls, frame: null,
    show(frame) {
      this.frame = frame;
      figure.hidden = false;
      frameTitle.textContent = frame.title;
      readout.textContent = "";
      draw(figure, frame, state);
      status.textContent = frame.description;
      status.classList.remove("tt-error");
    },
    fail(message) {
      this.frame = null;
      figure.hidden = true;
      frameTitle.textContent = "";
      status.textContent = message;
      status.classList.add("tt-error");
    },
  };
}

function labelled(parent, label, input) {
  const wrap = node("label", "tt-explorer-control");
  wrap.append(node("span", "tt-explorer-label", label), input);
  parent.appendChild(wrap);
  return input;
}

/**
 * Two analyses of the reader's last sentence, in a section after the explorer `host`, drawn by
 * `draw` (explorer.js's drawFigure): the heads ranked by the attention from one token to each
 * head's strongest other word (`strongestTargetsFrame`, the default) or to a chosen token
 * (`strongestHeadsFrame`, the notebook's "it" -> "cat"; a click on a cell of the explorer's
 * heatmaps, or Enter on its cursor, picks that pair), and one token's similarity to
 * two groups of anchor words, layer by layer (`similarityFrame`, the notebook's "apple"
 * experiment). `show(result)` fills it for a new `model.run` result.
 */
export function analysesView(host, model, draw, top = 5) {
  const section = node("section", "tt-explorer tt-explorer-analyses");
  section.setAttribute("aria-label", "your sentence, analysed");
  host.after(section);
  const heads = panel(section, "Your sentence: which heads send a token's attention where?", draw);
  const query = labelled(heads.controls, "from", node("select"));
  const key = labelled(heads.controls, "to", node("select"));
  heads.box.appendChild(node("div", "tt-explorer-caption",
    "Pick a token (and the word it should attend to, or let each head show its strongest), or " +
    "click a cell of a head above (or press Enter on the cursor) to pick its row and column."));
  const words = panel(section, "Your sentence: one token's vector, layer by layer, against two groups of words", draw);
  const form = node("form");
  form.style.display = "contents"; // its fields sit in the row of controls
  const word = labelled(form, "token", node("select"));
  const anchors = ANCHORS.map((value, i) => {
    const input = labelled(form, `group ${"AB"[i]}`, node("input"));
    Object.assign(input, { type: "text", value, name: `anchors-${i}` });
    return input;
  });
  const go = node("button", "", "Compare");
  go.type = "submit";
  form.appendChild(go);
  words.controls.appendChild(form);
  words.box.appendChild(node("div", "tt-explorer-caption",
    "Cosine similarity of the token's vector after each layer with the mean vector of each group's " +
    "words (each read alone, as [CLS] word [SEP]); comma-separated words of MiniLM's vocabulary."));
  let result = null;
  const rank = () => heads.show(key.value === ANY
    ? strongestTargetsFrame(result, +query.value, top)
    : strongestHeadsFrame(result, +query.value, +key.value, top));
  const compare = async () => {
    const run = result, p = +word.value;
    try {
      const groups = anchors.map((a) => anchorList(a.value));
      const means = [];
      for (const group of groups) means.push(await model.anchorMean(group));
      const vectors = contextualVectors(run, p);
      const curves = {};
      groups.forEach((group, i) => { curves[`vs ${group.join(", ")}`] = similarityByLayer(vectors, means[i]); });
      if (run === result) words.show(similarityFrame(curves, run.tokens[p]));
    } catch (error) {
      if (run === result) words.fail(error.message);
    }
  };
  query.addEventListener("change", rank);
  key.addEventListener("change", rank);
  word.addEventListener("change", compare);
  form.addEventListener("submit", (e) => { e.preventDefault(); compare(); });
  host.addEventListener("tt-pick", (e) => {
    const { row, col, rows, cols } = e.detail;
    if (!result || rows.join("\u0000") !== result.tokens.join("\u0000") || cols.length !== rows.length) return;
    query.value = String(row);
    key.value = String(col);
    rank();
  });
  return {
    section, heads, words,
    /** Fill the section for a new result; resolves once both figures are drawn. */
    show(run) {
      result = run;
      const seen = {};
      run.tokens.forEach((t) => { seen[t] = (seen[t] || 0) + 1; });
      for (const select of [query, key, word]) {
        select.textContent = "";
        if (select === key) select.appendChild(new Option("(each head's strongest word)", ANY));
        run.tokens.forEach((t, i) => select.appendChild(new Option(seen[t] > 1 ? `${t} (${i})` : t, String(i))));
      }
      const [i] = strongestLink(run);
      query.value = String(i);
      key.value = ANY;
      word.value = String(i);
      rank();
      return compare();
    },
  };
}

/** The strongest link between two different words (not [CLS]/[SEP]) over every layer and head:
 * [query, key] positions (the first two positions if the text has fewer than two words). */
export function strongestLink(result) {
  const { tokens, n } = result;
  const word = tokens.map((t) => t !== "[CLS]" && t !== "[SEP]");
  let best = -1, at = [0, Math.min(1, n - 1)];
  for (let s = 0; s < result.layers * result.heads; s += 1) {
    for (let i = 0; i < n; i += 1) {
      for (let j = 0; j < n; j += 1) {
        const w = result.attentions[(s * n + i) * n + j];
        if (word[i] && word[j] && i !== j && w > best) { best = w; at = [i, j]; }
      }
    }
  }
  return at;
}
