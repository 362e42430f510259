"""SmolLM2-135M-Instruct (gguf) in our decoder against transformers' LlamaForCausalLM loaded
from the same file, offline; generation, the KV cache and bad input."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from transformer_tutorial.generation import generate, time_generation
from transformer_tutorial.pretrained import SMOLLM2_GGUF_NAME, load_smollm2, smollm2_gguf_path

PROMPTS = [
    "Thanks for lunch, I had a",
    "The capital of France is",
    "def fibonacci(n):",
]
CHAT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def smollm2():
    return load_smollm2()


@pytest.fixture(scope="module")
def reference():
    folder = str(smollm2_gguf_path().parent)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=SMOLLM2_GGUF_NAME, attn_implementation="eager", local_files_only=True
    )
    tokenizer = AutoTokenizer.from_pretrained(
        folder, gguf_file=SMOLLM2_GGUF_NAME, local_files_only=True
    )
    return model.eval(), tokenizer


def test_loaded_once_per_process(smollm2):
    assert load_smollm2() is smollm2
    config = smollm2.model.config
    assert (config.num_layers, config.num_heads, config.num_kv_heads, config.d_model) == (
        30, 9, 3, 576,
    )  # fmt: skip
    assert config.tie_embeddings and smollm2.model.lm_head.weight is smollm2.model.embed.weight


@pytest.mark.parametrize(
    "text",
    PROMPTS + ["Prices: 12345 euros, 3.14%!", "naïve café — 日本語  two  spaces", CHAT],
)
def test_tokenizer_equals_transformers_gguf_tokenizer(smollm2, reference, text):
    _, tokenizer = reference
    assert smollm2.tokenize(text).ids == tuple(tokenizer(text).input_ids)
    ids = list(smollm2.tokenize(text).ids)
    assert smollm2.tokenizer.decode(ids, skip_special_tokens=False) == text


def test_logits_and_attention_equal_transformers(smollm2, reference):
    model, _ = reference
    for prompt in PROMPTS:
        run = smollm2.run(prompt)
        with torch.no_grad():
            ref = model(torch.tensor([run.text.ids]), output_attentions=True)
        np.testing.assert_allclose(run.logits, ref.logits[0].numpy(), atol=1e-3, rtol=0)
        expected = torch.stack([a[0] for a in ref.attentions]).numpy()
        assert run.record.weights.shape == (30, 9, len(run.text.ids), len(run.text.ids))
        np.testing.assert_allclose(run.record.weights, expected, atol=1e-4, rtol=0)


def test_greedy_continuations_equal_transformers(smollm2, reference):
    model, _ = reference
    for prompt in PROMPTS:
        ours = smollm2.generate(prompt, max_new_tokens=8)
        ids = torch.tensor([ours.generation.prompt_ids])
        with torch.no_grad():
            theirs = model.generate(
                ids, max_new_tokens=8, do_sample=False, eos_token_id=smollm2.eos_id,
                pad_token_id=smollm2.eos_id,
            )  # fmt: skip
        assert ours.generation.new_ids == tuple(theirs[0, ids.shape[1] :].tolist())


@pytest.mark.parametrize("sampling", [{}, {"temperature": 0.9, "top_k": 40, "top_p": 0.95}])
def test_kv_cache_gives_the_same_logits_and_tokens(smollm2, sampling):
    ids = smollm2.tokenize(PROMPTS[0]).ids
    cached = generate(smollm2.model, ids, 6, seed=3, use_cache=True, **sampling)
    uncached = generate(smollm2.model, ids, 6, seed=3, use_cache=False, **sampling)
    assert cached.new_ids == uncached.new_ids
    np.testing.assert_allclose(cached.step_logits, uncached.step_logits, atol=1e-4, rtol=0)
    assert cached.cache_bytes == 2 * 30 * 3 * (len(ids) + 5) * 64 * 4
    assert uncached.cache_bytes == 0


def test_generation_stops_at_end_of_sequence(smollm2):
    assert smollm2.chat_prompt("What is the capital of France?") == CHAT
    result = smollm2.generate(CHAT, max_new_tokens=20)
    assert result.generation.stop_reason == "end of sequence"
    assert result.generation.new_ids[-1] == smollm2.eos_id
    assert result.completion == "The capital of France is Paris."
    capped = smollm2.generate(CHAT, max_new_tokens=2)
    assert capped.generation.stop_reason == "max_new_tokens" and len(capped.new_tokens) == 2


def test_sampling_is_reproducible_with_a_seed(smollm2):
    a = smollm2.generate(PROMPTS[0], 5, temperature=1.0, seed=7)
    b = smollm2.generate(PROMPTS[0], 5, temperature=1.0, seed=7)
    c = smollm2.generate(PROMPTS[0], 5, temperature=1.0, seed=8)
    assert a.generation.new_ids == b.generation.new_ids != c.generation.new_ids


def test_timing_reports_both_runs(smollm2):
    timing = time_generation(smollm2.model, smollm2.tokenize(PROMPTS[0]).ids, new_tokens=2)
    assert timing.seconds_with_cache > 0 and timing.seconds_without_cache > 0
    assert timing.cache_bytes == 2 * 30 * 3 * (timing.prompt_tokens + 1) * 64 * 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("\t \n", "empty"),
        ("hello\u202eworld", r"U\+202E"),
        ("a\ud800b", r"U\+D800"),
        ("private \ue000 use", r"U\+E000"),
        (" a" * 8193, "at most 8192"),
    ],
)
def test_bad_text_is_refused_clearly(smollm2, text, message):
    with pytest.raises(ValueError, match=message):
        smollm2.generate(text)


def test_prompt_plus_new_tokens_must_fit_the_context(smollm2):
    prompt = " a" * 8190
    with pytest.raises(ValueError, match="exceeds the model's context of 8192"):
        smollm2.generate(prompt, max_new_tokens=5)
