"""Windowing and decoding of each task with the real MiniLM tokenizer (no training)."""

import pytest

from finsec_assets.ml.training import minilm_path
from finsec_assets.ml.understanding import tasks
from finsec_assets.ml.understanding.tasks import TaskOptions
from finsec_assets.ml.understanding.words import FALLBACK_SHAPE, number_shape, shaped_words, split_words

TEXT = ("Net sales were $648.1 billion in fiscal 2024, an increase of 6.0% compared to fiscal 2023, "
        "and operating income was $27.0 billion.")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


def test_words_keep_offsets_and_numbers_whole():
    words, starts = split_words(TEXT)
    assert "648.1" in words and all(TEXT[s:s + len(w)] == w for w, s in zip(words, starts))
    assert number_shape("1,234.5") == "[x,xxx.x]" and number_shape("sales") is None
    assert shaped_words(["was", "1,234", "12"], {"[x,xxx]"}) == ["was", "[x,xxx]", FALLBACK_SHAPE]


def test_ner_windows_cover_every_word_and_label_first_subtokens(tokenizer):
    words, _ = split_words(TEXT * 3)
    tags = ["B-Revenues" if w == "648.1" else "O" for w in words]
    options = TaskOptions(task="ner", labels=["O", "B-Revenues"], max_length=24, stride=6)
    features = tasks.ner_features(tokenizer, [words], options, [tags])
    assert len(features) > 3 and all(len(f["input_ids"]) <= 24 for f in features)
    covered = {w for f in features for w in f["_word_ids"] if w is not None}
    assert covered == set(range(len(words)))
    labelled = [(f["_word_ids"][p], lab) for f in features for p, lab in enumerate(f["labels"]) if lab == 1]
    assert {words[w] for w, _ in labelled} == {"648.1"}


def test_entity_spans_from_word_tags():
    words, starts = split_words(TEXT)
    tagged = [("O", 0.9)] * len(words)
    i = words.index("648.1")
    tagged[i] = ("B-Revenues", 0.8)
    tagged[i + 1] = ("I-Revenues", 0.6)  # "billion"
    spans = tasks.entity_spans(words, starts, tagged, TEXT)
    assert spans == [{"start": starts[i], "end": starts[i + 1] + len("billion"), "label": "Revenues",
                      "text": "648.1 billion", "score": 0.7}]


def test_qa_answer_positions_survive_windowing(tokenizer):
    context = "The company reported the following. " * 12 + TEXT
    start = context.index("27.0")
    options = TaskOptions(task="qa", max_length=48, stride=16)
    features = tasks.qa_features(tokenizer, ["What was operating income?"], [context], options, [(start, "27.0")])
    assert len(features) > 2
    hits = [f for f in features if f["start_positions"] > 0]
    assert hits, "some window must hold the answer"
    for f in hits:
        a, b = f["_offsets"][f["start_positions"]], f["_offsets"][f["end_positions"]]
        assert context[a[0]:b[1]] == "27.0"
    assert all(f["start_positions"] == f["end_positions"] == 0 for f in features if f not in hits)


def test_relation_window_keeps_both_entities(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(str(minilm_path()))
    tokenizer.add_tokens(list(tasks.RELATION_MARKERS), special_tokens=True)
    text = "Filler words here. " * 30 + TEXT
    head = text.index("648.1")
    tail = text.index("2024")
    item = {"text": text, "head_start": head, "head_end": head + 5, "tail_start": tail, "tail_end": tail + 4}
    options = TaskOptions(task="relation", labels=["no_relation", "period_of"], max_length=32)
    (feature,) = tasks.relation_features(tokenizer, [item], options, ["period_of"])
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert len(tokens) == 32 and all(m in tokens for m in tasks.RELATION_MARKERS)
    assert feature["labels"] == 1
    assert tasks.mark_entities("ab cd", (0, 2), (3, 5)) == "[e1] ab [/e1] [e2] cd [/e2]"


def test_classification_windows_are_capped(tokenizer):
    options = TaskOptions(task="classification", labels=["1A", "7"], max_length=32, stride=8, max_windows=3)
    features = tasks.classification_features(tokenizer, [TEXT * 10, "Net sales rose."], options, ["7", "1A"])
    per_sample = [sum(f["_sample"] == s for f in features) for s in (0, 1)]
    assert per_sample == [3, 1]


def test_summarization_targets_do_not_open_with_the_decoder_start_token(tokenizer):
    """The warm-started decoder is started with [CLS]; a target that also opens with [CLS] taught it to echo the
    start token (at demo size it generated only special tokens, ROUGE 0 in every variant)."""
    options = TaskOptions(task="summarization", max_length=32, max_target_length=12)
    features = tasks.summarization_features(tokenizer, [TEXT], options, ["Sales rose 6% in fiscal 2024."])
    (feature,) = features
    assert feature["input_ids"][0] == tokenizer.cls_token_id  # the encoder's input keeps [CLS]
    assert feature["labels"][0] != tokenizer.cls_token_id and feature["labels"][-1] == tokenizer.sep_token_id
    assert tokenizer.decode(feature["labels"], skip_special_tokens=True) == "sales rose 6 % in fiscal 2024."
