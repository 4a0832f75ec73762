"""The five datasets on the bundled sample's inline-XBRL filings: schema contract, company splits, determinism."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsec_assets.text.sections import extract_sections_with_report
from finsec_assets.xbrl import datasets as ds
from finsec_assets.xbrl import extract_facts

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
FILINGS = ["1045810/000104581024000029/nvda-20240128.htm.gz", "104169/000010416924000056/wmt-20240131.htm.gz",
           "97476/000009747624000007/txn-20231231.htm.gz", "63908/000006390824000072/mcd-20231231.htm.gz",
           "1744489/000174448923000171/dis-20230701.htm.gz"]
COMMON = ["split", "cik", "accession", "id"]
CONTRACT = {
    "ner": ["section", "text", "tokens", "token_starts", "tags"],
    "qa": ["question", "context", "answer_text", "answer_start", "is_impossible", "concept"],
    "relation": ["text", "head_start", "head_end", "tail_start", "tail_end", "tail_type", "label"],
    "classification": ["task", "text", "embedding", "label"],
    "summarization": ["document", "summary"],
}


@pytest.fixture(scope="module")
def corpus():
    facts, sections = [], []
    for rel in FILINGS:
        document = gzip.decompress((SAMPLE / rel).read_bytes())
        cik, folder = int(rel.split("/")[0]), rel.split("/")[1]
        accession = f"{folder[:10]}-{folder[10:12]}-{folder[12:]}"
        df = extract_facts(document)
        form = df.loc[df["concept"] == "dei:DocumentType", "text"].iloc[0]
        report = extract_sections_with_report(document, form)
        facts.append(df.assign(accession=accession, cik=cik))
        sections.append(pd.DataFrame([{"accession": accession, "cik": cik, "item": s.item, "text": s.text,
                                       "start": s.start} for s in report.sections]))
    facts = pd.concat(facts, ignore_index=True)
    facts["dimensions"] = facts["dimensions"].map(lambda d: __import__("json").dumps(d))  # as xbrl_facts stores them
    return facts, pd.concat(sections, ignore_index=True)


@pytest.fixture(scope="module")
def classification_inputs(corpus):
    _, sections = corpus
    universe = pd.DataFrame({"cik": [1045810, 104169, 97476, 63908, 1744489], "industry_code": ["D", "G", "D", "G", "I"]})
    rng = np.random.default_rng(0)
    embeddings = pd.DataFrame([{"accession": a, "cik": c, "item": item, "embedding": rng.normal(size=8).astype(np.float32)}
                               for a, c in sections[["accession", "cik"]].drop_duplicates().itertuples(index=False)
                               for item in ("1A", "7")])
    return embeddings, universe


@pytest.fixture(scope="module")
def built(corpus, classification_inputs):
    facts, sections = corpus
    embeddings, universe = classification_inputs
    return {
        "ner": ds.ner_dataset(facts, sections, top_k=20),
        "qa": ds.qa_dataset(facts, sections),
        "relation": ds.relation_dataset(facts, sections),
        "classification": ds.classification_dataset(sections, embeddings, universe),
        "summarization": ds.summarization_dataset(sections),
    }


@pytest.mark.parametrize("name", list(CONTRACT))
def test_schema_contract_and_company_splits(built, name):
    df, card = built[name]
    assert len(df) > 20, name
    assert set(COMMON + CONTRACT[name]) <= set(df.columns)
    assert df["id"].is_unique
    assert set(df["split"]) <= {"train", "validation", "test"}
    assert (df.groupby("cik")["split"].nunique() == 1).all()  # no CIK in two splits
    assert card["rows"] == len(df) and sum(card["sizes"].values()) == len(df) and card["derived"] and card["noise"]


def test_splits_cover_all_three_even_for_few_companies():
    splits, method = ds.assign_splits([1, 2, 3, 4, 5])
    assert set(splits.values()) == {"train", "validation", "test"}
    assert ds.assign_splits([1, 2, 3, 4, 5]) == (splits, method)
    many, method = ds.assign_splits(range(1, 2001))
    assert method == "hash" and 0.6 < sum(s == "train" for s in many.values()) / 2000 < 0.8
    assert all(ds.split_of(c) == s for c, s in many.items())  # stable as companies come and go


def test_ner_tags_line_up_with_tokens(built):
    df, card = built["ner"]
    tagged = 0
    for row in df.itertuples():
        assert len(row.tokens) == len(row.token_starts) == len(row.tags)
        for token, start, tag in zip(row.tokens, row.token_starts, row.tags):
            assert row.text[start:start + len(token)] == token
            assert tag == "O" or tag[:2] in ("B-", "I-")
            tagged += tag.startswith("B-")
    assert tagged >= len(df) * 0.5 and 10 <= len(card["labels"]) <= 20
    assert all(":" not in label and label[0].isupper() for label in card["labels"])  # us-gaap local names


def test_qa_answers_are_spans_and_a_third_is_impossible(built):
    df, _ = built["qa"]
    answerable = df[~df["is_impossible"]]
    assert all(r.context[r.answer_start:r.answer_start + len(r.answer_text)] == r.answer_text and r.answer_text
               for r in answerable.itertuples())
    impossible = df[df["is_impossible"]]
    assert (impossible["answer_start"] == -1).all() and (impossible["answer_text"] == "").all()
    assert 0.28 < len(impossible) / len(df) < 0.36
    assert df["question"].str.match(r"^What was .+ (for|as of) .+\d{4}\?$").all()


def test_relation_spans_and_labels(built):
    df, _ = built["relation"]
    assert set(df["tail_type"]) == {"period", "member"}
    assert set(df["label"]) == {"period_of", "member_of", "no_relation"}
    for r in df.itertuples():
        assert 0 <= r.head_start < r.head_end <= len(r.text) and 0 <= r.tail_start < r.tail_end <= len(r.text)
        assert r.head_end <= r.tail_start or r.tail_end <= r.head_start
    member_of = df[df["label"] == "member_of"]
    assert (member_of["tail_type"] == "member").all()


def test_classification_has_both_tasks(built):
    df, _ = built["classification"]
    paragraphs = df[df["task"] == "paragraph_item"]
    industry = df[df["task"] == "filing_industry"]
    assert paragraphs["text"].notna().all() and paragraphs["embedding"].isna().all()
    assert {"1A", "7"} <= set(paragraphs["label"])
    assert len(industry) == 5 and industry["text"].isna().all()
    assert all(v.dtype == np.float32 for v in industry["embedding"]) and set(industry["label"]) == {"D", "G", "I"}


def test_summaries_are_risk_factor_headings(built):
    df, _ = built["summarization"]
    assert (df["summary"].str.split().map(len) < df["document"].str.split().map(len)).all()
    assert df["summary"].str.split().map(len).between(6, 80).all()
    assert df["accession"].nunique() >= 4


def test_deterministic(corpus, built):
    facts, sections = corpus
    again, _ = ds.qa_dataset(facts, sections)
    pd.testing.assert_frame_equal(again, built["qa"][0])
    again, _ = ds.ner_dataset(facts, sections, top_k=20)
    pd.testing.assert_frame_equal(again, built["ner"][0])


def test_risk_factor_headings_from_text_shape():
    body = " ".join(["Our business could suffer in many ways that are hard to predict in advance."] * 6)
    text = "\n\n".join(["Risks Related to Our Business", "We depend on a small number of suppliers for key parts.", body,
                        body, "Competition could reduce our market share and our margins.", body])
    pairs = ds.risk_factors(text)
    assert [h for h, _ in pairs] == ["We depend on a small number of suppliers for key parts.",
                                     "Competition could reduce our market share and our margins."]
    assert pairs[0][1] == body + "\n\n" + body


def test_period_phrases_and_labels():
    assert ds.period_phrase("2023-01-01", "2023-12-31") == "the year ended December 31, 2023"
    assert ds.period_phrase("2023-04-02", "2023-07-01") == "the three months ended July 1, 2023"
    assert ds.period_phrase(None, "2024-01-28") == "January 28, 2024"
    assert ds.concept_label("us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax") == \
        "revenue from contract with customer excluding assessed tax"
    assert ds.member_label("us-gaap:AutomotiveSegmentMember") == "automotive segment"
    assert ds.tokenize("$1,234.5 million.") == (["$", "1,234.5", "million", "."], [0, 1, 9, 16])


@pytest.mark.parametrize("per_chunk", [1, 2, 5])
def test_streamed_datasets_equal_the_whole_frame_ones(corpus, built, per_chunk):
    """Chunks of filings in accession order give the same rows, ids, splits and card as every filing at once."""
    facts, sections = corpus
    accessions = sorted(set(facts["accession"]))
    groups = [accessions[i:i + per_chunk] for i in range(0, len(accessions), per_chunk)]

    def chunks():
        for group in groups:
            yield facts[facts["accession"].isin(group)], sections[sections["accession"].isin(group)]

    streamed = {
        "ner": lambda card: ds.ner_dataset_batches(chunks, card, top_k=20),
        "qa": lambda card: ds.qa_dataset_batches(chunks, card),
        "relation": lambda card: ds.relation_dataset_batches(chunks, card),
        "summarization": lambda card: ds.summarization_dataset_batches(lambda: (s for _, s in chunks()), card),
    }
    for name, batches in streamed.items():
        card = {}
        df = pd.concat(list(batches(card)), ignore_index=True)
        whole, whole_card = built[name]
        assert len(df) > 20, name
        pd.testing.assert_frame_equal(df, whole, check_dtype=False, obj=name)
        assert card == whole_card, name


def test_streamed_datasets_without_filings_give_their_columns(built):
    for name, batches in {"ner": ds.ner_dataset_batches, "qa": ds.qa_dataset_batches,
                          "relation": ds.relation_dataset_batches, "summarization": ds.summarization_dataset_batches}.items():
        card = {}
        frames = list(batches(lambda: iter([]), card))
        assert len(frames) == 1 and frames[0].empty and list(frames[0].columns) == list(built[name][0].columns), name
        assert card["rows"] == 0 and card["sizes"] == {"train": 0, "validation": 0, "test": 0}, name


@pytest.mark.parametrize("per_chunk", [1, 2, 5])
def test_streamed_classification_equals_the_whole_frame(corpus, built, classification_inputs, per_chunk):
    """Paragraph chunks then filing-vector chunks, in accession order: the same rows, ids, splits, sampled
    paragraphs and card as every filing at once."""
    _, sections = corpus
    embeddings, universe = classification_inputs
    accessions = sorted(set(sections["accession"]))
    groups = [accessions[i:i + per_chunk] for i in range(0, len(accessions), per_chunk)]
    card = {}
    frames = list(ds.classification_dataset_batches(
        lambda: (sections[sections["accession"].isin(g)] for g in groups),
        lambda: (embeddings[embeddings["accession"].isin(g)] for g in groups), universe, card))
    df = pd.concat(frames, ignore_index=True)
    whole, whole_card = built["classification"]
    assert {"paragraph_item", "filing_industry"} <= set(df["task"]) and len(frames) > 1
    pd.testing.assert_frame_equal(df, whole, check_dtype=False)
    assert card == whole_card
    empty_card = {}
    (empty,) = ds.classification_dataset_batches(lambda: iter([]), lambda: iter([]), universe, empty_card)
    assert empty.empty and list(empty.columns) == list(whole.columns) and empty_card["rows"] == 0


def test_sampled_paragraphs_do_not_depend_on_the_order_sections_are_read(corpus, classification_inputs):
    """Each section draws its own paragraphs: reading the filings in reverse chunks (as a new quarter read first would)
    keeps the same rows. A generator shared across chunks would give other paragraphs to every section after the
    first sampled one."""
    _, sections = corpus
    embeddings, universe = classification_inputs
    accessions = sorted(set(sections["accession"]))
    rows = {}
    for order in ("forward", "reverse"):
        groups = [[a] for a in (accessions if order == "forward" else accessions[::-1])]
        frames = ds.classification_dataset_batches(lambda: (sections[sections["accession"].isin(g)] for g in groups),
                                                   lambda: iter([]), universe, {}, max_paragraphs_per_section=2)
        df = pd.concat(list(frames), ignore_index=True)
        rows[order] = sorted(zip(df["accession"], df["source_item"], df["text"]))
    assert len(rows["forward"]) > 10
    sampled = pd.Series([a for a, _, _ in rows["forward"]]).value_counts()
    assert (sampled >= 2).any()  # some section had more paragraphs than it keeps: the draw is exercised
    assert rows["forward"] == rows["reverse"]
