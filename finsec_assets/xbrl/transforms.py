"""Inline XBRL transformation rules (ixt v1-v4 and ixt-sec) as plain functions.

A fact's ``format`` names the rule that turns its displayed text ("1,234.5",
"—", "three", "December 31, 2023") into the XBRL value. Names are compared
without their prefix, case and hyphens, so ixt v4 ``num-dot-decimal`` and v3
``numdotdecimal`` are one rule. :func:`apply` raises :class:`TransformError` on
text the rule cannot read and on unknown rules; the caller flags the fact.
"""

from __future__ import annotations

import re

__all__ = ["TransformError", "apply", "normalize_name", "KNOWN"]


class TransformError(ValueError):
    """The displayed text does not fit the named transformation rule."""


def normalize_name(fmt: str) -> str:
    """'ixt:num-dot-decimal' -> 'numdotdecimal'; 'ixt-sec:numwordsen' -> 'numwordsen'."""
    return fmt.rsplit(":", 1)[-1].replace("-", "").replace("_", "").lower()


_DASHES = "-–—‒―−"
_ZERO_DASH_RE = re.compile(rf"^\s*[{_DASHES}]*\s*$")


def _number(text: str, thousands: str, decimal: str) -> str:
    digits = text.strip()
    if not re.fullmatch(rf"[\d{re.escape(thousands)}\s\u00a0\u202f']*(?:{re.escape(decimal)}\d*)?", digits) or not re.search(r"\d", digits):
        raise TransformError(f"{text!r} is not a number with {thousands!r} thousands and {decimal!r} decimal separators")
    whole, _, fraction = digits.partition(decimal)
    whole = re.sub(r"\D", "", whole) or "0"
    return f"{int(whole)}.{fraction}" if fraction else str(int(whole))


def _num_dot_decimal(text: str) -> str:
    return _number(text, ",", ".")


def _num_comma_decimal(text: str) -> str:
    return _number(text, ".", ",")


def _zero(text: str) -> str:
    return "0"


def _zero_dash(text: str) -> str:
    if not _ZERO_DASH_RE.match(text):
        raise TransformError(f"{text!r} is not a dash for zero")
    return "0"


def _num_unit_decimal(text: str) -> str:
    """'5 dollars and 23 cents' -> '5.23' (whole units, then a fraction in hundredths)."""
    groups = re.findall(r"\d[\d,.\s]*", text)
    if not groups:
        raise TransformError(f"{text!r} holds no number")
    whole = re.sub(r"\D", "", groups[0])
    fraction = re.sub(r"\D", "", groups[1]) if len(groups) > 1 else ""
    return f"{int(whole)}.{fraction.zfill(2)}" if fraction else str(int(whole))


_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "trillion": 10**12}


def _words_to_number(text: str) -> int:
    words = re.findall(r"[a-z]+|\d[\d,]*", text.lower().replace("-", " "))
    words = [w for w in words if w != "and"]
    if words in (["no"], ["none"]):
        return 0
    if not words:
        raise TransformError(f"{text!r} holds no number words")
    total = current = 0
    for word in words:
        if word[0].isdigit():
            current += int(word.replace(",", ""))
        elif word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        else:
            raise TransformError(f"{text!r}: {word!r} is not an English number word")
    return total + current


def _num_words_en(text: str) -> str:
    return str(_words_to_number(text))


_MONTHS = {m: i + 1 for i, m in enumerate(
    "january february march april may june july august september october november december".split())}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9


def _month(token: str) -> int:
    token = token.lower().rstrip(".")
    if token.isdigit():
        month = int(token)
    elif token in _MONTHS:
        month = _MONTHS[token]
    else:
        raise TransformError(f"{token!r} is not a month")
    if not 1 <= month <= 12:
        raise TransformError(f"{token!r} is not a month")
    return month


def _year(token: str) -> int:
    if not token.isdigit():
        raise TransformError(f"{token!r} is not a year")
    year = int(token)
    return year + (2000 if year < 50 else 1900) if len(token) <= 2 else year


def _date(order: list[str]):
    """A date rule reading day/month/year tokens in ``order``; missing parts give a gYearMonth or gMonthDay."""

    def rule(text: str) -> str:
        tokens = re.findall(r"[A-Za-z]+\.?|\d+", text)
        tokens = [t for t in tokens if t.lower().rstrip(".") not in ("of", "the", "st", "nd", "rd", "th")]
        if len(tokens) != len(order):
            raise TransformError(f"{text!r} does not read as {'-'.join(order)}")
        parts = dict(zip(order, tokens))
        month = _month(parts["month"])
        day = int(parts["day"]) if "day" in parts and parts["day"].isdigit() else None
        if "day" in parts and (day is None or not 1 <= day <= 31):
            raise TransformError(f"{text!r}: {parts['day']!r} is not a day")
        if "year" in parts:
            year = _year(parts["year"])
            return f"{year:04d}-{month:02d}-{day:02d}" if day else f"{year:04d}-{month:02d}"
        return f"--{month:02d}-{day:02d}"

    return rule


def _duration(unit: str):
    """ixt-sec dur*: a (possibly decimal) count of years/months/days -> xs:duration."""

    def rule(text: str) -> str:
        raw = text.strip()
        try:
            number = float(raw.replace(",", ""))
        except ValueError:
            number = float(_words_to_number(raw))
        if number < 0:
            raise TransformError(f"{text!r} is a negative duration")
        if unit == "Y":
            years = int(number)
            months = round((number - years) * 12, 6)
            whole_months = int(months)
            days = round((months - whole_months) * 30, 3)
            return "P" + (f"{years}Y" if years or not (whole_months or days) else "") + (
                f"{whole_months}M" if whole_months else "") + (f"{days:g}D" if days else "")
        if unit == "M":
            months = int(number)
            days = round((number - months) * 30, 3)
            return "P" + (f"{months}M" if months or not days else "") + (f"{days:g}D" if days else "")
        return f"P{number:g}D"

    return rule


_DUR_WORDS_RE = re.compile(r"(.+?)\s+(years?|months?|days?)\b", re.I)


def _dur_words_en(text: str) -> str:
    """'two years and six months' -> 'P2Y6M'."""
    parts = _DUR_WORDS_RE.findall(text.replace(",", " "))
    if not parts:
        raise TransformError(f"{text!r} is not a duration in words")
    out = {"Y": 0, "M": 0, "D": 0}
    for words, unit in parts:
        words = re.sub(r"^\s*and\s+", "", words.strip(), flags=re.I)
        out[unit[0].upper()] += _words_to_number(words)
    return "P" + "".join(f"{v}{k}" for k, v in out.items() if v) if any(out.values()) else "P0D"


def _ballot_box(text: str) -> str:
    box = text.strip()
    if box in ("☒", "☑", "■", "x", "X", "þ"):
        return "true"
    if box in ("☐", "□", "o", "¨"):
        return "false"
    raise TransformError(f"{text!r} is not a ballot box")


def _fixed(value: str):
    return lambda text: value


def _identity(text: str) -> str:
    return " ".join(text.split())


def _date_rules() -> dict:
    rules = {}
    for name in (
        "datedaymonthyear", "datemonthdayyear", "dateyearmonthday", "datemonthyear", "dateyearmonth",
        "datemonthday", "datedaymonth", "datedaymonthnameyearen", "datemonthnamedayyearen", "datemonthnameyearen",
        "datemonthnamedayen", "datedaymonthnameen", "dateyearmonthnameen", "datedaymonthyearen",
        "datemonthdayyearen", "datemonthyearen", "datemonthdayen", "datedaymonthen", "dateyearmonthen",
        "dateyearmonthdayen", "datedaymonthnameyear", "datemonthnamedayyear",
    ):
        order = re.findall(r"day|month|year", name[len("date"):])
        rules[name] = _date(order)
    return rules


KNOWN = {
    # numbers
    "numdotdecimal": _num_dot_decimal, "numcommadot": _num_dot_decimal, "numspacedot": _num_dot_decimal,
    "numcommadecimal": _num_comma_decimal, "numdotcomma": _num_comma_decimal, "numspacecomma": _num_comma_decimal,
    "numdotdecimalin": _num_dot_decimal, "numunitdecimal": _num_unit_decimal, "numunitdecimalin": _num_unit_decimal,
    "fixedzero": _zero, "zerodash": _zero_dash, "numdash": _zero_dash, "nocontent": _fixed(""), "fixedempty": _fixed(""),
    "numwordsen": _num_words_en, "numinf": _fixed("INF"), "numneginf": _fixed("-INF"), "numnan": _fixed("NaN"),
    # booleans
    "fixedtrue": _fixed("true"), "fixedfalse": _fixed("false"), "booleantrue": _fixed("true"),
    "booleanfalse": _fixed("false"), "booltrue": _fixed("true"), "boolfalse": _fixed("false"),
    "boolballotbox": _ballot_box,
    # durations
    "duryear": _duration("Y"), "durmonth": _duration("M"), "durday": _duration("D"), "durwordsen": _dur_words_en,
    # SEC code lists: the displayed name is kept as shown
    "exchnameen": _identity, "stateprovnameen": _identity, "countrynameen": _identity,
    "entityfilercategoryen": _identity, "edgarprovcountryen": _identity,
    **_date_rules(),
}


def apply(fmt: str | None, text: str) -> str:
    """The XBRL lexical value of ``text`` under rule ``fmt`` (no rule: the text, whitespace collapsed)."""
    if not fmt:
        return _identity(text)
    rule = KNOWN.get(normalize_name(fmt))
    if rule is None:
        raise TransformError(f"unknown transformation rule {fmt!r}")
    return rule(text)
