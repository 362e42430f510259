"""Chapter 9: the step-by-step generation and the per-position cache timings."""

import numpy as np
import pytest
import torch
from explorer_frames import ROUNDED, panel

from transformer_tutorial.chapters import ch09_generation as ch09
from transformer_tutorial.chapters.ch09_generation import (
    generation_steps,
    speedup_figure,
    steps_figure,
    steps_table,
    time_steps_by_position,
)
from transformer_tutorial.pretrained import load_smollm2

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def smollm2():
    return load_smollm2()


def test_greedy_steps_are_the_model_distribution_at_each_prefix(smollm2):
    chat = smollm2.chat_prompt("What is the capital of France?")
    steps, result = generation_steps(smollm2, chat, max_new_tokens=20, top=4)
    ids = result.generation.new_ids
    assert [s.chosen_id for s in steps] == list(ids)
    assert ids[-1] == smollm2.eos_id and result.generation.stop_reason == "end of sequence"
    prompt = list(result.generation.prompt_ids)
    for i, step in enumerate(steps):
        assert step.context == len(prompt) + i
        with torch.no_grad():  # an independent forward pass, no cache, torch's softmax
            logits = smollm2.model(torch.tensor([prompt + list(ids[:i])])).logits[0, -1]
        probs = torch.softmax(logits.double(), -1).numpy()
        order = np.argsort(-probs)[:4]
        assert step.rank == 0 and step.chosen_id == order[0]
        np.testing.assert_allclose([p for _, p in step.candidates], probs[order], atol=1e-4)
        assert step.probability == pytest.approx(probs[ids[i]], abs=1e-4)
    assert steps[-1].text.endswith("<|im_end|>")
    assert result.completion == "The capital of France is Paris."
    assert "step" in steps_table(steps) and steps_figure(steps).axes


def test_sampled_steps_draw_from_the_filtered_distribution(smollm2):
    steps, result = generation_steps(
        smollm2, "Thanks for lunch, I had a", 4, temperature=0.8, top_k=5, seed=1, top=5
    )
    assert len(steps) == 4 and result.generation.stop_reason == "max_new_tokens"
    for step in steps:
        assert sum(p for _, p in step.candidates) == pytest.approx(1.0)  # top-5 keeps 5
        assert step.probability > 0 and step.rank < 5


def test_step_times_and_bad_positions(smollm2):
    ids = smollm2.tokenize("one two three four five six seven eight nine ten").ids
    times = time_steps_by_position(smollm2.model, ids, positions=(2, 8), repeats=2, warmup=0)
    assert times.without_cache.shape == times.with_cache.shape == (2, 2)
    assert (times.without_cache > 0).all() and (times.with_cache > 0).all()
    assert times.speedup.shape == (2,) and speedup_figure(times).axes
    with pytest.raises(ValueError, match="positions"):
        time_steps_by_position(smollm2.model, ids, positions=(1,))
    with pytest.raises(ValueError, match="top"):
        generation_steps(smollm2, "hi", 1, top=0)


# -- The chapter's explorer ----------------------------------------------------------------


def test_next_token_explorer_filters():
    from transformer_tutorial.sampling import next_token_distribution

    explorer = ch09.next_token_explorer()
    assert len(explorer.controls[0].values) >= 25
    logits = ch09._next_token_logits(ch09.NEXT_TOKEN_PROMPT)
    top3 = panel(explorer, temperature=0.3, sampling_filter="top-k 3")
    assert len(top3["values"]) == 3 and sum(top3["values"]) == pytest.approx(1.0, abs=1e-3)
    expected = np.sort(next_token_distribution(logits, 0.3, top_k=3))[::-1][:3]
    np.testing.assert_allclose(top3["values"], expected, **ROUNDED)
    hot = panel(explorer, temperature=2.0, sampling_filter="none")
    assert len(hot["values"]) == 12 and sum(hot["values"]) < 0.5  # spread thin
    nucleus = explorer.data(temperature=1.0, sampling_filter="top-p 0.5")
    kept = int((next_token_distribution(logits, 1.0, top_p=0.5) > 0).sum())
    everything = int((next_token_distribution(logits, 1.0) > 0).sum())
    assert kept < everything / 100
    assert f"filter: top-p 0.5: {kept} possible next tokens" in nucleus["title"]
    assert nucleus["panels"][0]["labels"][0].startswith("'")  # quoted: a leading space shows
