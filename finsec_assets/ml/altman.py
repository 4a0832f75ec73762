"""Altman Z-scores from real XBRL company facts, and JumpStart's synthetic credit-rating financials.

Two halves that meet in the TabText dataset:

* **Real firms.** :func:`altman_inputs_from_facts` reads an EDGAR company-facts JSON
  (``/api/xbrl/companyfacts/CIK##########.json``) and returns one row per fiscal
  year (one per 10-K) with the eight Altman inputs, the ratios A-E, Z, Z'' and
  their zones. Every value records which XBRL tag (or fallback formula) it came
  from, and every gap is a flag, never a silent zero. The tag fallbacks are in
  :data:`TAG_FALLBACKS` and documented there.
* **Synthetic firms.** :func:`simulate_financials` reproduces the generator of
  SageMaker JumpStart's corporate-credit-rating solution (anchors from FRED
  2021Q1, +-15% perturbations, rejection rules, Z noise, min-max rescale to
  [0, 7], shift, rating by nearest Altman median Z), and :func:`rank_join`
  pairs the simulated firms with text units ranked by their NLP scores, the way
  JumpStart attached MD&As to firms. JumpStart's notebook flipped the sign of
  ``negative`` before subtracting it (so negative words *raised* a firm's
  rank); here it is subtracted as the design says, and
  ``replicate_negative_sign_bug=True`` reproduces the original.

Pure library: numpy and pandas only, callable from a notebook.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "RATINGS", "INVESTMENT_GRADE", "RATING_MEDIAN_Z", "NLP_SCORES", "RANK_PLUS", "RANK_MINUS", "ALTMAN_INPUTS",
    "RATIO_COLUMNS", "TAG_FALLBACKS", "JUMPSTART_COLUMNS", "AltmanAnchors", "FRED_2021Q1",
    "altman_z", "altman_z_double_prime", "z_zone", "z_double_prime_zone", "altman_ratios", "facts_table",
    "altman_inputs_from_facts", "accounting_identity_violations", "simulate_financials", "rate_scaled_z",
    "ratios_from_jumpstart_columns", "text_rank", "rank_join", "split_passages", "mdna_mask", "mdna_sections",
    "text_units",
]

# -- ratings -------------------------------------------------------------------------------------------------------
RATINGS: tuple[str, ...] = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")
INVESTMENT_GRADE = frozenset({"AAA", "AA", "A", "BBB"})
# Altman's median Z by S&P rating; JumpStart rates a rescaled Z by the nearest of these (midpoint bins).
RATING_MEDIAN_Z = {"AAA": 6.20, "AA": 4.73, "A": 3.74, "BBB": 2.81, "BB": 2.38, "B": 1.80, "CCC": 0.33}

# -- NLP scores and JumpStart's text rank --------------------------------------------------------------------------
NLP_SCORES: tuple[str, ...] = ("positive", "negative", "certainty", "uncertainty", "risk", "safe", "litigious",
                               "fraud", "sentiment", "polarity", "readability")
RANK_PLUS: tuple[str, ...] = ("positive", "polarity", "safe", "sentiment", "certainty")
RANK_MINUS: tuple[str, ...] = ("fraud", "litigious", "negative", "uncertainty", "risk")

# -- Altman inputs ---------------------------------------------------------------------------------------------------
# The eight inputs of Z plus book equity (Z'' uses it in place of market value).
ALTMAN_INPUTS: tuple[str, ...] = ("current_assets", "current_liabilities", "total_liabilities", "ebit", "total_assets",
                                  "net_sales", "retained_earnings", "market_value_equity", "book_equity")
RATIO_COLUMNS: tuple[str, ...] = ("A", "B", "C", "D", "E")

# Which XBRL facts feed each input, in order of preference. "tag" entries are single us-gaap (or dei) tags;
# formulas are applied only when no listed tag has a value for the period. Documented here, applied below.
TAG_FALLBACKS: dict[str, tuple[str, ...]] = {
    "total_assets": ("Assets", "LiabilitiesAndStockholdersEquity"),
    "current_assets": ("AssetsCurrent",
                       "unclassified balance sheet: sum of cash, receivables, inventory, prepaid and other current "
                       "items reported for the period (flag approx:working_capital)"),
    "current_liabilities": ("LiabilitiesCurrent",
                            "unclassified balance sheet: sum of payables, accrued liabilities, taxes payable, "
                            "short-term borrowings and current debt (flag approx:working_capital)"),
    "total_liabilities": ("Liabilities",
                          "LiabilitiesAndStockholdersEquity - "
                          "StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest",
                          "LiabilitiesAndStockholdersEquity - StockholdersEquity - MinorityInterest",
                          "LiabilitiesAndStockholdersEquity - StockholdersEquity (flag tl_includes_minority_interest "
                          "when the company reports a non-controlling interest elsewhere)"),
    "retained_earnings": ("RetainedEarningsAccumulatedDeficit",),
    "ebit": ("OperatingIncomeLoss",
             "pre-tax income (IncomeLossFromContinuingOperationsBeforeIncomeTaxes"
             "ExtraordinaryItemsNoncontrollingInterest | ...MinorityInterestAndIncomeLossFromEquityMethodInvestments"
             " | ...Domestic + ...Foreign) + interest expense (InterestExpense | InterestExpenseNonoperating | "
             "InterestExpenseDebt | -InterestIncomeExpenseNet | -InterestIncomeExpenseNonoperatingNet) "
             "(flag ebit_from_pretax_income; ebit_without_interest when no interest tag)"),
    "net_sales": ("Revenues", "RevenueFromContractWithCustomerExcludingAssessedTax",
                  "RevenueFromContractWithCustomerIncludingAssessedTax", "SalesRevenueNet", "SalesRevenueGoodsNet",
                  "SalesRevenueServicesNet", "RevenuesNetOfInterestExpense"),
    "market_value_equity": ("dei:EntityPublicFloat of the same 10-K (cover page; non-affiliate float at the end of "
                            "the second fiscal quarter, a lower bound of market value); none -> flag mve_missing, "
                            "Z is NaN and Z'' (book equity) is the score to use",),
    "book_equity": ("StockholdersEquity", "StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest"),
}

ANNUAL_FORMS = ("10-K", "10-K405", "10-KT", "10-KSB")
_CURRENT_ASSET_PARTS = (
    ("CashAndCashEquivalentsAtCarryingValue", "CashCashEquivalentsRestrictedCashAndRestrictedCashEquivalents", "Cash"),
    ("ShortTermInvestments", "MarketableSecuritiesCurrent", "AvailableForSaleSecuritiesDebtSecuritiesCurrent"),
    ("AccountsReceivableNetCurrent", "AccountsReceivableNet", "ReceivablesNetCurrent"),
    ("OtherReceivables", "OtherReceivablesNetCurrent"),
    ("InventoryNet",),
    ("PrepaidExpenseCurrent", "PrepaidExpenseAndOtherAssetsCurrent"),
)
_CURRENT_LIABILITY_PARTS = (
    ("AccountsPayableCurrent", "AccountsPayableCurrentAndNoncurrent", "AccountsPayableAndAccruedLiabilitiesCurrent"),
    ("AccruedLiabilitiesCurrent", "AccruedLiabilitiesCurrentAndNoncurrent"),
    ("TaxesPayableCurrent", "TaxesPayableCurrentAndNoncurrent", "AccruedIncomeTaxesCurrent"),
    ("ShortTermBorrowings", "CommercialPaper"),
    ("LongTermDebtCurrent", "DebtCurrent"),
)
_PRETAX_INCOME = ("IncomeLossFromContinuingOperationsBeforeIncomeTaxesExtraordinaryItemsNoncontrollingInterest",
                  "IncomeLossFromContinuingOperationsBeforeIncomeTaxesMinorityInterestAndIncomeLossFromEquityMethodInvestments")
_INTEREST_EXPENSE = ("InterestExpense", "InterestExpenseNonoperating", "InterestExpenseDebt")
_NET_INTEREST_INCOME = ("InterestIncomeExpenseNet", "InterestIncomeExpenseNonoperatingNet")

# JumpStart's tabular columns (TotalAssets is normalised to 100 and left out of their CSV).
JUMPSTART_COLUMNS: tuple[str, ...] = ("CurrentLiabs", "TotalLiabs", "RetainedEarnings", "CurrentAssets", "NetSales",
                                      "EBIT", "MktValueEquity")


# ================================================================================================================
# Scores and zones
# ================================================================================================================
def altman_z(a, b, c, d, e, *, sales_coefficient: float = 0.999):
    """Altman (1968) Z = 3.3A + 0.999B + 0.6C + 1.2D + 1.4E; JumpStart rounds the B weight to 0.99."""
    return 3.3 * a + sales_coefficient * b + 0.6 * c + 1.2 * d + 1.4 * e


def altman_z_double_prime(x1, x2, x3, x4):
    """Z'' for non-manufacturers and private firms: 6.56 WC/TA + 3.26 RE/TA + 6.72 EBIT/TA + 1.05 BE/TL."""
    return 6.56 * x1 + 3.26 * x2 + 6.72 * x3 + 1.05 * x4


def _zones(z, low: float, high: float):
    z = np.asarray(z, dtype=float)
    out = np.where(z > high, "safe", np.where(z >= low, "grey", "distress")).astype(object)
    out[np.isnan(z)] = None
    return out if out.ndim else out.item()


def z_zone(z):
    """'safe' above 2.99, 'grey' from 1.81 to 2.99, 'distress' below 1.81, None where Z is NaN."""
    return _zones(z, 1.81, 2.99)


def z_double_prime_zone(z):
    """Z'' zones: 'safe' above 2.60, 'grey' from 1.10 to 2.60, 'distress' below 1.10, None where NaN."""
    return _zones(z, 1.10, 2.60)


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(df.columns)}")


def _add_flag(flags: pd.Series, mask, flag: str) -> pd.Series:
    mask = np.asarray(mask, dtype=bool)
    return flags.where(~mask, flags.where(flags == "", flags + ";") + flag)


def altman_ratios(inputs: pd.DataFrame, *, sales_coefficient: float = 0.999) -> pd.DataFrame:
    """Ratios A-E, X4 = book equity / TL, Z, Z'' and zones for a table of Altman inputs.

    Rows whose total assets are zero or negative get NaN ratios and the flag
    ``nonpositive_total_assets``; rows missing an input get NaN where it is needed.
    Nothing is dropped: the ``flags`` column (';'-separated) says why a score is missing.
    """
    required = [c for c in ALTMAN_INPUTS if c != "book_equity"]
    _require_columns(inputs, required, "altman_ratios(inputs)")
    out = inputs.copy()
    num = {c: pd.to_numeric(out[c], errors="coerce").astype(float) for c in ALTMAN_INPUTS if c in out.columns}
    flags = out["flags"].fillna("").astype(str) if "flags" in out.columns else pd.Series("", index=out.index)
    ta = num["total_assets"]
    bad_ta = ta.notna() & (ta <= 0)
    flags = _add_flag(flags, bad_ta, "nonpositive_total_assets")
    ta = ta.where(~bad_ta)
    tl = num["total_liabilities"]
    bad_tl = tl.notna() & (tl <= 0)
    flags = _add_flag(flags, bad_tl, "nonpositive_total_liabilities")
    tl = tl.where(~bad_tl)
    out["A"] = num["ebit"] / ta
    out["B"] = num["net_sales"] / ta
    out["C"] = num["market_value_equity"] / tl
    out["D"] = (num["current_assets"] - num["current_liabilities"]) / ta
    out["E"] = num["retained_earnings"] / ta
    out["X4"] = (num["book_equity"] / tl) if "book_equity" in num else np.nan
    out["altman_z"] = altman_z(out["A"], out["B"], out["C"], out["D"], out["E"], sales_coefficient=sales_coefficient)
    out["altman_z_double_prime"] = altman_z_double_prime(out["D"], out["E"], out["A"], out["X4"])
    out["zone"] = z_zone(out["altman_z"].to_numpy())
    out["zone_double_prime"] = z_double_prime_zone(out["altman_z_double_prime"].to_numpy())
    for col in ("altman_z", "altman_z_double_prime"):
        out[col] = out[col].astype(float)
    out["flags"] = flags
    return out


def ratios_from_jumpstart_columns(df: pd.DataFrame, total_assets: float | str = 100.0) -> pd.DataFrame:
    """Ratios A-E (and Z with JumpStart's 0.99) from JumpStart's columns; their TotalAssets is normalised to 100."""
    _require_columns(df, JUMPSTART_COLUMNS, "ratios_from_jumpstart_columns(df)")
    ta = df[total_assets].astype(float) if isinstance(total_assets, str) else float(total_assets)
    if np.any(np.asarray(ta) <= 0):
        raise ValueError(f"ratios_from_jumpstart_columns: total assets must be positive, got {total_assets!r}")
    out = pd.DataFrame(index=df.index)
    out["A"] = df["EBIT"] / ta
    out["B"] = df["NetSales"] / ta
    out["C"] = df["MktValueEquity"] / df["TotalLiabs"]
    out["D"] = (df["CurrentAssets"] - df["CurrentLiabs"]) / ta
    out["E"] = df["RetainedEarnings"] / ta
    out["altman_z"] = altman_z(out["A"], out["B"], out["C"], out["D"], out["E"])
    return out


# ================================================================================================================
# Real inputs from XBRL company facts
# ================================================================================================================
_FACT_COLUMNS = ["taxonomy", "tag", "unit", "start", "end", "val", "accn", "fy", "fp", "form", "filed"]


def facts_table(company_facts: dict) -> pd.DataFrame:
    """Every monetary fact of a company-facts JSON as one flat table (USD only)."""
    if not isinstance(company_facts, dict) or not isinstance(company_facts.get("facts"), dict):
        raise ValueError("company facts: expected the JSON of /api/xbrl/companyfacts/CIK##########.json "
                         "with a 'facts' object")
    rows = []
    for taxonomy, tags in company_facts["facts"].items():
        if not isinstance(tags, dict):
            continue
        for tag, body in tags.items():
            units = body.get("units", {}) if isinstance(body, dict) else {}
            for unit, facts in units.items():
                if unit != "USD":
                    continue
                for f in facts:
                    rows.append((taxonomy, tag, unit, f.get("start"), f.get("end"), f.get("val"), f.get("accn"),
                                 f.get("fy"), f.get("fp"), f.get("form"), f.get("filed")))
    df = pd.DataFrame(rows, columns=_FACT_COLUMNS)
    df["val"] = pd.to_numeric(df["val"], errors="coerce")
    for col in ("start", "end", "filed"):
        df[col] = pd.to_datetime(df[col], errors="coerce")
    return df.dropna(subset=["end", "val", "accn"])


class _Facts:
    """Look-ups of one company's facts by tag, period end and (preferably) the reporting accession."""

    def __init__(self, facts: pd.DataFrame):
        # (tag, end) -> [(filed, accn, val, is_instant, is_annual)], earliest filed first
        self.index: dict[tuple[str, pd.Timestamp], list[tuple]] = {}
        days = (facts["end"] - facts["start"]).dt.days
        ordered = facts.assign(instant=facts["start"].isna(), annual=days.between(340, 380)).sort_values("filed")
        for tag, end, filed, accn, val, instant, annual in zip(
                ordered["tag"], ordered["end"], ordered["filed"], ordered["accn"], ordered["val"], ordered["instant"],
                ordered["annual"]):
            self.index.setdefault((tag, end), []).append((filed, accn, float(val), bool(instant), bool(annual)))
        # A company that never reports a non-controlling interest has none to subtract.
        tags = set(facts["tag"])
        self.reports_minority_interest = bool(
            {"MinorityInterest", "StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest"} & tags)

    def _get(self, tag: str, end: pd.Timestamp, accn: str, slot: int) -> float | None:
        found = [f for f in self.index.get((tag, end), ()) if f[slot]]
        if not found:
            return None
        own = [f for f in found if f[1] == accn]
        return (own or found)[0][2]  # the 10-K's own value, else as first reported for that period

    def instant(self, tag: str, end: pd.Timestamp, accn: str) -> float | None:
        return self._get(tag, end, accn, 3)

    def annual(self, tag: str, end: pd.Timestamp, accn: str) -> float | None:
        return self._get(tag, end, accn, 4)

    def first(self, kind: str, tags: Sequence[str], end, accn) -> tuple[float | None, str | None]:
        get = self.instant if kind == "instant" else self.annual
        for tag in tags:
            v = get(tag, end, accn)
            if v is not None and math.isfinite(v):
                return v, tag
        return None, None


def _annual_reports(facts: pd.DataFrame) -> pd.DataFrame:
    """One row per fiscal year: the 10-K accession, its balance-sheet date and fiscal year; originals before amendments."""
    bs = facts[facts["tag"].isin(["Assets", "LiabilitiesAndStockholdersEquity"]) & facts["start"].isna()]
    form = bs["form"].fillna("")
    base = form.str.replace("/A", "", regex=False)
    bs = bs[base.isin(ANNUAL_FORMS)].assign(amended=form.str.endswith("/A"))
    if bs.empty:
        return pd.DataFrame(columns=["accn", "form", "filed", "fy", "period_end", "amended"])
    reports = (bs.groupby("accn").agg(form=("form", "first"), filed=("filed", "min"), fy=("fy", "max"),
                                      period_end=("end", "max"), amended=("amended", "first")).reset_index())
    reports = reports.sort_values(["period_end", "amended", "filed"])
    return reports.drop_duplicates("period_end", keep="first").reset_index(drop=True)


def _sum_parts(f: _Facts, parts, end, accn) -> tuple[float | None, list[str]]:
    total, used = 0.0, []
    for alternatives in parts:
        v, tag = f.first("instant", alternatives, end, accn)
        if v is not None:
            total += v
            used.append(tag)
    return (total if used else None), used


def altman_inputs_from_facts(company_facts: dict, *, sales_coefficient: float = 0.999) -> pd.DataFrame:
    """One row per fiscal year (10-K) with the Altman inputs, their source tags, flags, ratios, Z, Z'' and zones.

    Values come from the 10-K's own facts where it reports them, otherwise from the
    first filing that reported that period. Missing tags are flags (``missing:<input>``),
    never zeros; see :data:`TAG_FALLBACKS` for what is tried before giving up.
    """
    facts = facts_table(company_facts)
    cik = company_facts.get("cik")
    name = company_facts.get("entityName")
    columns = ["cik", "entity_name", "accession", "form", "filed", "fiscal_year", "period_end", *ALTMAN_INPUTS,
               "public_float_date", "sources", "flags"]
    reports = _annual_reports(facts)
    if reports.empty:
        return altman_ratios(pd.DataFrame(columns=columns), sales_coefficient=sales_coefficient)
    f = _Facts(facts)
    floats = facts[(facts["taxonomy"] == "dei") & (facts["tag"] == "EntityPublicFloat")]
    rows = []
    for rep in reports.itertuples(index=False):
        end, accn = rep.period_end, rep.accn
        vals: dict[str, float | None] = {}
        src: dict[str, str] = {}
        flags: list[str] = []

        def take(key, value, source):
            vals[key] = value
            if value is not None:
                src[key] = source

        v, tag = f.first("instant", TAG_FALLBACKS["total_assets"], end, accn)
        take("total_assets", v, tag)
        ca, ca_tag = f.first("instant", ("AssetsCurrent",), end, accn)
        cl, cl_tag = f.first("instant", ("LiabilitiesCurrent",), end, accn)
        if ca is None and cl is None:
            ca, ca_parts = _sum_parts(f, _CURRENT_ASSET_PARTS, end, accn)
            cl, cl_parts = _sum_parts(f, _CURRENT_LIABILITY_PARTS, end, accn)
            if ca is not None and cl is not None:
                ca_tag, cl_tag = "+".join(ca_parts), "+".join(cl_parts)
                flags.append("approx:working_capital")
            else:
                ca = cl = None
                flags.append("unclassified_balance_sheet")
        take("current_assets", ca, ca_tag)
        take("current_liabilities", cl, cl_tag)

        tl, tl_tag = f.first("instant", ("Liabilities",), end, accn)
        if tl is None:
            lse, _ = f.first("instant", ("LiabilitiesAndStockholdersEquity",), end, accn)
            eq_all, _ = f.first("instant", TAG_FALLBACKS["book_equity"][1:], end, accn)
            eq, _ = f.first("instant", ("StockholdersEquity",), end, accn)
            nci, _ = f.first("instant", ("MinorityInterest",), end, accn)
            if lse is not None and eq_all is not None:
                tl = lse - eq_all
                tl_tag = "LiabilitiesAndStockholdersEquity-StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest"
            elif lse is not None and eq is not None and nci is not None:
                tl, tl_tag = lse - eq - nci, "LiabilitiesAndStockholdersEquity-StockholdersEquity-MinorityInterest"
            elif lse is not None and eq is not None:
                tl, tl_tag = lse - eq, "LiabilitiesAndStockholdersEquity-StockholdersEquity"
                if f.reports_minority_interest:
                    flags.append("tl_includes_minority_interest")
        take("total_liabilities", tl, tl_tag)

        v, tag = f.first("instant", TAG_FALLBACKS["retained_earnings"], end, accn)
        take("retained_earnings", v, tag)

        ebit, ebit_tag = f.first("annual", ("OperatingIncomeLoss",), end, accn)
        if ebit is None:
            pretax, pretax_tag = f.first("annual", _PRETAX_INCOME, end, accn)
            if pretax is None:
                dom, _ = f.first("annual", ("IncomeLossFromContinuingOperationsBeforeIncomeTaxesDomestic",), end, accn)
                fgn, _ = f.first("annual", ("IncomeLossFromContinuingOperationsBeforeIncomeTaxesForeign",), end, accn)
                if dom is not None and fgn is not None:
                    pretax, pretax_tag = dom + fgn, "PretaxDomestic+PretaxForeign"
            if pretax is not None:
                interest, int_tag = f.first("annual", _INTEREST_EXPENSE, end, accn)
                if interest is None:
                    net, net_tag = f.first("annual", _NET_INTEREST_INCOME, end, accn)
                    if net is not None:
                        interest, int_tag = -net, f"-{net_tag}"
                if interest is None:
                    interest, int_tag = 0.0, "no interest tag"
                    flags.append("ebit_without_interest")
                ebit, ebit_tag = pretax + interest, f"{pretax_tag}+{int_tag}"
                flags.append("ebit_from_pretax_income")
        take("ebit", ebit, ebit_tag)

        v, tag = f.first("annual", TAG_FALLBACKS["net_sales"], end, accn)
        take("net_sales", v, tag)
        v, tag = f.first("instant", TAG_FALLBACKS["book_equity"], end, accn)
        take("book_equity", v, tag)

        pf = floats[floats["accn"] == accn].sort_values("end")
        if len(pf):
            take("market_value_equity", float(pf["val"].iloc[-1]), "dei:EntityPublicFloat")
            pf_date = pf["end"].iloc[-1]
        else:
            take("market_value_equity", None, None)
            pf_date = pd.NaT
            flags.append("mve_missing")
        for key in ALTMAN_INPUTS:
            if vals.get(key) is None and key != "market_value_equity" and not (
                    key in ("current_assets", "current_liabilities") and "unclassified_balance_sheet" in flags):
                flags.append(f"missing:{key}")
        rows.append({
            "cik": int(cik) if cik is not None else None, "entity_name": name, "accession": accn, "form": rep.form,
            "filed": rep.filed.date().isoformat() if pd.notna(rep.filed) else None,
            "fiscal_year": int(rep.fy) if pd.notna(rep.fy) else int(end.year),
            "period_end": end.date().isoformat(),
            **{k: (np.nan if vals.get(k) is None else float(vals[k])) for k in ALTMAN_INPUTS},
            "public_float_date": pf_date.date().isoformat() if pd.notna(pf_date) else None,
            "sources": ";".join(f"{k}={src[k]}" for k in ALTMAN_INPUTS if k in src),
            "flags": ";".join(flags),
        })
    return altman_ratios(pd.DataFrame(rows, columns=columns), sales_coefficient=sales_coefficient)


def accounting_identity_violations(inputs: pd.DataFrame) -> pd.DataFrame:
    """Rows breaking an accounting identity: TA > 0, 0 <= CA <= TA, 0 <= CL <= TL, TL >= 0, sales >= 0, MVE >= 0.

    Missing values are not violations (they are flagged elsewhere). Returns one row per
    (row index, rule) with the offending values.
    """
    _require_columns(inputs, ["total_assets", "current_assets", "current_liabilities", "total_liabilities",
                              "net_sales", "market_value_equity"], "accounting_identity_violations(inputs)")
    x = {c: pd.to_numeric(inputs[c], errors="coerce") for c in inputs.columns if c in ALTMAN_INPUTS}
    rules = {
        "total_assets > 0": x["total_assets"] <= 0,
        "current_assets <= total_assets": x["current_assets"] > x["total_assets"],
        "current_assets >= 0": x["current_assets"] < 0,
        "current_liabilities <= total_liabilities": x["current_liabilities"] > x["total_liabilities"],
        "current_liabilities >= 0": x["current_liabilities"] < 0,
        "total_liabilities >= 0": x["total_liabilities"] < 0,
        "net_sales >= 0": x["net_sales"] < 0,
        "market_value_equity >= 0": x["market_value_equity"] < 0,
    }
    out = []
    for rule, mask in rules.items():
        for idx in inputs.index[mask.fillna(False).to_numpy()]:
            rec = {"row": idx, "rule": rule}
            for col in ("cik", "accession", "fiscal_year"):
                if col in inputs.columns:
                    rec[col] = inputs.at[idx, col]
            out.append(rec)
    return pd.DataFrame(out, columns=["row", "rule", "cik", "accession", "fiscal_year"])


# ================================================================================================================
# JumpStart's synthetic financials
# ================================================================================================================
@dataclass(frozen=True)
class AltmanAnchors:
    """Economy-wide totals the synthetic firms are perturbed around (JumpStart: FRED, Q1 2021, $M)."""

    current_liabilities: float = 2_298_532
    total_liabilities: float = 6_960_819
    book_equity: float = 1_512_808
    retained_earnings: float = 3_390_350
    current_assets: float = 3_148_207
    total_assets: float = 11_863_977
    net_sales: float = 1_659_606
    ebit: float = 157_123
    price_to_book: float = 4.75

    def validated(self) -> "AltmanAnchors":
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"anchors.{field.name}: must be a positive finite number, got {value!r}")
        if self.current_assets > self.total_assets:
            raise ValueError(f"anchors: current_assets {self.current_assets} exceed total_assets {self.total_assets}")
        if self.current_liabilities > self.total_liabilities:
            raise ValueError(f"anchors: current_liabilities {self.current_liabilities} exceed total_liabilities "
                             f"{self.total_liabilities}")
        return self

    @classmethod
    def from_mapping(cls, values: dict | None) -> "AltmanAnchors":
        """Defaults overridden by ``values``; unknown keys are an error."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"anchors: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**values).validated()


FRED_2021Q1 = AltmanAnchors()

# Perturbed inputs, in the order their uniforms are drawn for each candidate firm.
_PERTURBED = ("current_liabilities", "total_liabilities", "book_equity", "retained_earnings", "current_assets",
              "net_sales", "ebit", "price_to_book")


def rate_scaled_z(z_scaled) -> np.ndarray:
    """Rating whose Altman median Z is nearest (ties go to the better rating)."""
    z = np.asarray(z_scaled, dtype=float)
    if np.isnan(z).any():
        raise ValueError(f"rate_scaled_z: {int(np.isnan(z).sum())} NaN value(s) cannot be rated")
    medians = np.array([RATING_MEDIAN_Z[r] for r in RATINGS])
    return np.array(RATINGS, dtype=object)[np.abs(z[..., None] - medians).argmin(axis=-1)]


def simulate_financials(n: int, seed: int = 42, *, anchors: AltmanAnchors | dict | None = None,
                        perturbation: float = 0.3, z_noise: float = 0.5, z_scale: float = 7.0,
                        z_shift: float = 0.75, max_candidates: int | None = None) -> pd.DataFrame:
    """``n`` synthetic firms with JumpStart's columns (total assets = 100), their Z and a ``Rating``.

    JumpStart's generator, step by step: scale the anchors to TA = 100; for each candidate
    multiply CL, TL, EQ, RE, CA, NS, EBIT and price-to-book by ``1 + perturbation * (U(0,1) - 0.5)``;
    MVE = P2B x (EQ + RE); reject if CL > TL, EQ + RE + TL > TA, CA > TA, EBIT > NS, P2B < 0
    or Z <= 0 (Z with JumpStart's 0.99 weight on B); add N(0, z_noise^2) to Z; min-max rescale
    the noisy Z to [0, z_scale]; subtract ``z_shift`` (floored at 0); rate by the nearest Altman
    median Z. Because the rescale uses the sample's extremes, rating shares move a few points
    from seed to seed (see benchmarks/credit.py); they match JumpStart's on average.

    Extra columns: ``firm`` (0..n-1), ``TotalAssets``, ``BookEquity``, ``altman_z`` (noise-free),
    ``z_noisy``, ``z_scaled``. ``df.attrs`` holds the candidate and rejection counts.
    Candidates and noise come from independent streams of ``seed``, so the first k firms of
    ``n`` are the firms of ``k`` (before rating, which depends on the whole sample).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"simulate_financials: n must be an integer >= 2 (min-max rescaling needs two firms), got {n!r}")
    if not (0 < perturbation < 2):
        raise ValueError(f"simulate_financials: perturbation must be in (0, 2) so every factor stays positive, "
                         f"got {perturbation!r}")
    if not (z_noise >= 0 and math.isfinite(z_noise)):
        raise ValueError(f"simulate_financials: z_noise must be a finite number >= 0, got {z_noise!r}")
    if not (z_scale > 0 and z_shift >= 0):
        raise ValueError(f"simulate_financials: need z_scale > 0 and z_shift >= 0, got {z_scale!r}, {z_shift!r}")
    if anchors is None:
        anchors = FRED_2021Q1
    elif isinstance(anchors, dict):
        anchors = AltmanAnchors.from_mapping(anchors)
    anchors = anchors.validated()
    n = int(n)
    max_candidates = max_candidates or 1000 * n
    scale = 100.0 / anchors.total_assets
    base = np.array([getattr(anchors, k) * (1.0 if k == "price_to_book" else scale) for k in _PERTURBED])
    firms_ss, noise_ss = np.random.SeedSequence(seed).spawn(2)
    draw, noise_rng = np.random.default_rng(firms_ss), np.random.default_rng(noise_ss)

    accepted: list[np.ndarray] = []
    n_accepted = n_candidates = 0
    rejected = dict.fromkeys(["CL > TL", "EQ + RE + TL > TA", "CA > TA", "EBIT > NS", "P2B < 0", "Z <= 0"], 0)
    batch = max(1024, 2 * n)
    while n_accepted < n:
        if n_candidates >= max_candidates:
            raise ValueError(f"simulate_financials: only {n_accepted} of {n} firms accepted after {n_candidates} "
                             f"candidates; the anchors/perturbation make the rejection rules almost always fail "
                             f"(rejections: {rejected})")
        x = base * (1.0 + perturbation * (draw.random((batch, len(_PERTURBED))) - 0.5))
        cl, tl, eq, re_, ca, ns, ebit, p2b = x.T
        mve = p2b * (eq + re_)
        z = altman_z(ebit / 100, ns / 100, mve / tl, (ca - cl) / 100, re_ / 100, sales_coefficient=0.99)
        rules = {"CL > TL": cl > tl, "EQ + RE + TL > TA": eq + re_ + tl > 100.0, "CA > TA": ca > 100.0,
                 "EBIT > NS": ebit > ns, "P2B < 0": p2b < 0, "Z <= 0": z <= 0}
        bad = np.zeros(batch, dtype=bool)
        for mask in rules.values():
            bad |= mask
        take = np.flatnonzero(~bad)[: n - n_accepted]
        # count only the candidates up to the last one used, so the counts describe exactly this sample
        used = int(take[-1]) + 1 if len(take) == n - n_accepted else batch
        for key, mask in rules.items():
            rejected[key] += int(mask[:used].sum())
        n_candidates += used
        accepted.append(np.column_stack([cl, tl, eq, re_, ca, ns, ebit, mve, z])[take])
        n_accepted += len(take)
    cl, tl, eq, re_, ca, ns, ebit, mve, z = np.concatenate(accepted).T
    z_noisy = z + noise_rng.normal(0.0, z_noise, n)
    span = z_noisy.max() - z_noisy.min()
    z_scaled = z_scale * (z_noisy - z_noisy.min()) / span if span > 0 else np.zeros(n)
    z_scaled = np.maximum(z_scaled - z_shift, 0.0)
    df = pd.DataFrame({
        "firm": np.arange(n), "CurrentLiabs": cl, "TotalLiabs": tl, "RetainedEarnings": re_, "CurrentAssets": ca,
        "NetSales": ns, "EBIT": ebit, "MktValueEquity": mve, "TotalAssets": 100.0, "BookEquity": eq,
        "altman_z": z, "z_noisy": z_noisy, "z_scaled": z_scaled, "Rating": rate_scaled_z(z_scaled),
    })
    df.attrs.update({"seed": seed, "candidates": int(n_candidates), "rejected": int(n_candidates - n),
                     "rejections_by_rule": rejected, "anchors": dataclasses.asdict(anchors),
                     "perturbation": perturbation, "z_noise": z_noise})
    return df


# ================================================================================================================
# Text units and the rank join
# ================================================================================================================
def text_rank(scores: pd.DataFrame, *, replicate_negative_sign_bug: bool = False) -> pd.Series:
    """JumpStart's text rank of a text unit from its NLP scores.

    rank = (positive + polarity + safe + sentiment + certainty) - (fraud + litigious + negative + uncertainty + risk).

    ``replicate_negative_sign_bug=True`` reproduces their notebook, which negated
    ``negative`` before subtracting it, so negative language raised the rank.
    """
    _require_columns(scores, (*RANK_PLUS, *RANK_MINUS), "text_rank(scores)")
    values = scores[[*RANK_PLUS, *RANK_MINUS]].apply(pd.to_numeric, errors="coerce")
    nan_rows = values.isna().any(axis=1)
    if nan_rows.any():
        cols = sorted(values.columns[values.isna().any()].tolist())
        raise ValueError(f"text_rank: {int(nan_rows.sum())} row(s) have NaN scores in {cols}; "
                         f"score or drop them first (rows {list(scores.index[nan_rows][:10])})")
    minus = values[list(RANK_MINUS)].copy()
    if replicate_negative_sign_bug:
        minus["negative"] = -minus["negative"]
    return (values[list(RANK_PLUS)].sum(axis=1) - minus.sum(axis=1)).rename("text_rank")


def rank_join(firms: pd.DataFrame, units: pd.DataFrame, *, replicate_negative_sign_bug: bool = False) -> pd.DataFrame:
    """Pair firms sorted by noisy Z with text units sorted by :func:`text_rank`, best with best.

    Both tables must have the same length. The result keeps the units' columns (text
    references, scores) and the firms' financials; the noisy and rescaled Z, which
    encode the label, and the rank are dropped, as JumpStart did.
    """
    _require_columns(firms, ["z_noisy"], "rank_join(firms)")
    if len(firms) != len(units):
        raise ValueError(f"rank_join: {len(firms)} firms but {len(units)} text units; they are paired one to one")
    rank = text_rank(units, replicate_negative_sign_bug=replicate_negative_sign_bug)
    unit_order = np.argsort(-rank.to_numpy(), kind="stable")
    firm_order = np.argsort(-firms["z_noisy"].to_numpy(dtype=float), kind="stable")
    left = units.iloc[unit_order].reset_index(drop=True)
    right = firms.iloc[firm_order].reset_index(drop=True).drop(columns=["z_noisy", "z_scaled"], errors="ignore")
    clash = sorted(set(left.columns) & set(right.columns))
    if clash:
        raise ValueError(f"rank_join: firms and units share column(s) {clash}; rename one side")
    return pd.concat([left, right], axis=1)


_WORD = re.compile(r"\S+")


def split_passages(text: str, window_words: int = 500, stride_words: int | None = None,
                   split_sentences: Callable[[str], list[str]] | None = None) -> list[str]:
    """Sentence-aligned passages of about ``window_words`` words, one starting every ``stride_words`` words.

    A passage never cuts a sentence, except a single sentence longer than the window
    (a flattened table), which is cut into window-sized pieces. A trailing remainder
    shorter than half a window joins the previous passage, so no text is lost.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_passages: text must be str, got {type(text).__name__}")
    stride_words = window_words if stride_words is None else stride_words
    if window_words < 20 or stride_words < 1 or stride_words > window_words:
        raise ValueError(f"split_passages: need window_words >= 20 and 1 <= stride_words <= window_words, "
                         f"got {window_words}, {stride_words}")
    if split_sentences is None:
        from finsec_assets.text.sentences import split_sentences
    sentences: list[str] = []
    for s in split_sentences(text):
        words = s.split()
        for i in range(0, len(words), window_words):
            sentences.append(" ".join(words[i:i + window_words]))
    if not sentences:
        return []
    lengths = np.array([len(s.split()) for s in sentences])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    passages, last_start, last_end = [], -1, 0
    offset = 0
    while True:
        begin = int(np.searchsorted(starts, offset, side="left"))
        if begin >= len(sentences):
            break
        if passages and total - starts[begin] < window_words // 2:
            if last_end < len(sentences):  # the short tail joins the previous passage
                passages[-1] = " ".join(sentences[last_start:])
            break
        end = int(np.searchsorted(starts, starts[begin] + window_words, side="left"))
        end = max(end, begin + 1)
        if begin != last_start:
            passages.append(" ".join(sentences[begin:end]))
            last_start, last_end = begin, end
        if end >= len(sentences):
            break
        offset += stride_words
    return passages


def mdna_mask(rows: pd.DataFrame) -> pd.Series:
    """True where a row (with ``form`` and ``item``) is an MD&A: item 7 of a 10-K, item I-2 of a 10-Q."""
    _require_columns(rows, ["form", "item"], "mdna_mask(rows)")
    form = rows["form"].astype(str).str.upper()
    item = rows["item"].astype(str)
    return (form.str.startswith("10-K") & (item == "7")) | (form.str.startswith("10-Q") & (item == "I-2"))


def mdna_sections(sections: pd.DataFrame) -> pd.DataFrame:
    """The non-empty MD&A rows of ``filing_sections``."""
    _require_columns(sections, ["accession", "form", "item", "text"], "mdna_sections(sections)")
    return sections[mdna_mask(sections) & sections["text"].fillna("").str.strip().ne("")].reset_index(drop=True)


def text_units(sections: pd.DataFrame, min_units: int, *, window_words: int = 500, stride_words: int | None = None,
               split_sentences: Callable[[str], list[str]] | None = None) -> tuple[pd.DataFrame, str]:
    """The text units firms are paired with: whole MD&As when there are at least ``min_units``, else MD&A passages.

    Returns the units (``accession``, ``item``, ``passage`` (-1 for a whole MD&A), ``text``,
    ``n_words`` plus the section's ``cik``/``form``/``filing_date`` where present) and the
    kind, ``"mdna"`` or ``"passage"``.
    """
    mdna = mdna_sections(sections)
    keep = [c for c in ("accession", "cik", "form", "filing_date", "item") if c in mdna.columns]
    if len(mdna) >= min_units:
        units = mdna[keep + ["text"]].assign(passage=-1)
        kind = "mdna"
    else:
        rows = []
        for rec in mdna.to_dict("records"):
            for i, passage in enumerate(split_passages(rec["text"], window_words, stride_words, split_sentences)):
                rows.append({**{k: rec[k] for k in keep}, "passage": i, "text": passage})
        units = pd.DataFrame(rows, columns=keep + ["passage", "text"])
        kind = "passage"
    units["n_words"] = units["text"].map(lambda t: len(_WORD.findall(t))).astype(int)
    return units[keep + ["passage", "text", "n_words"]].reset_index(drop=True), kind
