"""Altman inputs from XBRL facts, JumpStart's synthetic generator, the rank join and the text units."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml import altman
from finsec_assets.ml.altman import (RATINGS, accounting_identity_violations, altman_inputs_from_facts,
                                     altman_ratios, altman_z, altman_z_double_prime, rank_join, rate_scaled_z,
                                     simulate_financials, split_passages, text_rank, text_units, z_double_prime_zone,
                                     z_zone)

SAMPLE_FACTS = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "api" / "xbrl" / "companyfacts"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
# JumpStart's rating shares on 3,286 MD&As (../shared/REFERENCE.md), in percent.
REFERENCE_SHARES = {"AAA": 0.3, "AA": 5.7, "A": 22.2, "BBB": 25.9, "BB": 18.4, "B": 22.2, "CCC": 5.3}


def sample_facts(cik: int) -> dict:
    return json.loads(gzip.decompress((SAMPLE_FACTS / f"CIK{cik:010d}.json.gz").read_bytes()))


# -- scores and zones ---------------------------------------------------------------------------------------------
def test_z_formulas_and_zones():
    assert altman_z(0.1, 1.0, 1.0, 0.2, 0.3) == pytest.approx(0.33 + 0.999 + 0.6 + 0.24 + 0.42)
    assert altman_z(0.1, 1.0, 1.0, 0.2, 0.3, sales_coefficient=0.99) == pytest.approx(0.33 + 0.99 + 0.6 + 0.24 + 0.42)
    assert altman_z_double_prime(0.2, 0.3, 0.1, 0.5) == pytest.approx(6.56 * 0.2 + 3.26 * 0.3 + 6.72 * 0.1 + 1.05 * 0.5)
    assert list(z_zone([3.0, 2.99, 1.81, 1.80, np.nan])) == ["safe", "grey", "grey", "distress", None]
    assert list(z_double_prime_zone([2.61, 2.6, 1.1, 1.09])) == ["safe", "grey", "grey", "distress"]
    assert z_zone(5.0) == "safe"


def test_rating_is_the_nearest_altman_median():
    assert list(rate_scaled_z([6.25, 5.47, 5.46, 4.24, 4.23, 3.28, 3.27, 2.6, 2.59, 2.1, 2.09, 1.07, 1.06, 0.0])) == [
        "AAA", "AAA", "AA", "AA", "A", "A", "BBB", "BBB", "BB", "BB", "B", "B", "CCC", "CCC"]
    with pytest.raises(ValueError, match="NaN"):
        rate_scaled_z([1.0, np.nan])


def test_ratios_are_the_definitions_and_bad_rows_are_flagged_not_dropped():
    inputs = pd.DataFrame({
        "current_assets": [40.0, 10.0, 5.0], "current_liabilities": [20.0, 5.0, 1.0],
        "total_liabilities": [60.0, 30.0, 2.0], "ebit": [8.0, 1.0, 1.0], "total_assets": [100.0, 0.0, -5.0],
        "net_sales": [120.0, 10.0, 3.0], "retained_earnings": [25.0, 1.0, 1.0],
        "market_value_equity": [90.0, np.nan, 1.0], "book_equity": [40.0, 1.0, 1.0]})
    out = altman_ratios(inputs)
    row = out.iloc[0]
    assert (row.A, row.B, row.C, row.D, row.E, row.X4) == pytest.approx((0.08, 1.2, 1.5, 0.2, 0.25, 40 / 60))
    assert row.altman_z == pytest.approx(3.3 * 0.08 + 0.999 * 1.2 + 0.6 * 1.5 + 1.2 * 0.2 + 1.4 * 0.25)
    assert row.altman_z_double_prime == pytest.approx(6.56 * 0.2 + 3.26 * 0.25 + 6.72 * 0.08 + 1.05 * 40 / 60)
    assert row.zone == "grey" and row["flags"] == ""  # Z = 2.95
    assert len(out) == 3  # nothing dropped
    assert out.loc[1:, "flags"].tolist() == ["nonpositive_total_assets", "nonpositive_total_assets"]
    assert out.loc[1:, ["A", "B", "D", "E", "altman_z", "altman_z_double_prime"]].isna().all().all()
    assert out.loc[1:, "zone"].isna().all()


def test_ratios_need_their_inputs():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['ebit'"):
        altman_ratios(pd.DataFrame({"total_assets": [1.0]}).assign(
            current_assets=1.0, current_liabilities=1.0, total_liabilities=1.0, net_sales=1.0, retained_earnings=1.0,
            market_value_equity=1.0))
    with pytest.raises(TypeError, match="DataFrame"):
        altman_ratios({"total_assets": [1.0]})


# -- XBRL company facts ---------------------------------------------------------------------------------------------
def test_walmart_fiscal_2024_from_the_bundled_facts():
    df = altman_inputs_from_facts(sample_facts(104169))
    assert df["period_end"].is_unique and (df["form"] == "10-K").all()
    fy = df.set_index("period_end").loc["2024-01-31"]
    assert fy.accession == "0000104169-24-000056" and fy.fiscal_year == 2024
    # Walmart's FY2024 10-K: total assets $252.4B, revenue $648.1B, operating income $27.0B.
    assert fy.total_assets == 252_399e6 and fy.net_sales == 648_125e6 and fy.ebit == 27_012e6
    # Walmart tags no us-gaap:Liabilities: the fallback subtracts total equity incl. non-controlling interest.
    assert "total_liabilities=LiabilitiesAndStockholdersEquity-StockholdersEquityIncludingPortion" in fy.sources
    assert fy.total_liabilities == 162_050e6
    assert fy.market_value_equity == pytest.approx(228_694_206_501) and fy.public_float_date == "2023-07-31"
    assert fy.A == pytest.approx(fy.ebit / fy.total_assets)
    assert fy.C == pytest.approx(fy.market_value_equity / fy.total_liabilities)
    assert fy.D == pytest.approx((fy.current_assets - fy.current_liabilities) / fy.total_assets)
    assert fy.zone == "safe" and fy["flags"] == ""
    assert accounting_identity_violations(df).empty


def _facts(*facts, floats=()) -> dict:
    """A minimal company-facts JSON: facts are (tag, start, end, val, accn, form, filed)."""
    gaap: dict = {}
    for tag, start, end, val, accn, form, filed in facts:
        fact = {"end": end, "val": val, "accn": accn, "fy": int(end[:4]), "fp": "FY", "form": form, "filed": filed}
        if start:
            fact["start"] = start
        gaap.setdefault(tag, {"units": {"USD": []}})["units"]["USD"].append(fact)
    dei = {"EntityPublicFloat": {"units": {"USD": [
        {"end": end, "val": val, "accn": accn, "fy": 2023, "fp": "FY", "form": "10-K", "filed": "2024-02-20"}
        for end, val, accn in floats]}}}
    return {"cik": 1234, "entityName": "TEST CO", "facts": {"us-gaap": gaap, "dei": dei}}


K1 = ("0000001234-24-000001", "10-K", "2024-02-20")
YEAR = ("2023-01-01", "2023-12-31")


def _full_year(**overrides):
    base = {"Assets": 1000, "AssetsCurrent": 400, "LiabilitiesCurrent": 250, "Liabilities": 600,
            "RetainedEarningsAccumulatedDeficit": 300, "StockholdersEquity": 400, "OperatingIncomeLoss": 90,
            "Revenues": 1500}
    base.update(overrides)
    rows = []
    for tag, val in base.items():
        if val is None:
            continue
        start = YEAR[0] if tag in ("OperatingIncomeLoss", "Revenues", "InterestExpense", "InterestIncomeExpenseNet",
                                   "IncomeLossFromContinuingOperationsBeforeIncomeTaxesExtraordinaryItemsNoncontrollingInterest") else None
        rows.append((tag, start, YEAR[1], val, *K1))
    return rows


def test_every_input_from_its_primary_tag():
    df = altman_inputs_from_facts(_facts(*_full_year(), floats=[("2023-06-30", 2000, K1[0])]))
    assert len(df) == 1
    r = df.iloc[0]
    assert (r.total_assets, r.current_assets, r.current_liabilities, r.total_liabilities, r.retained_earnings,
            r.ebit, r.net_sales, r.book_equity, r.market_value_equity) == (1000, 400, 250, 600, 300, 90, 1500, 400, 2000)
    assert r["flags"] == "" and r.fiscal_year == 2023 and r.period_end == "2023-12-31"
    assert r.altman_z == pytest.approx(altman_z(0.09, 1.5, 2000 / 600, 0.15, 0.3))


def test_tag_fallbacks_are_used_and_flagged():
    facts = _full_year(Liabilities=None, OperatingIncomeLoss=None, Revenues=None,
                       IncomeLossFromContinuingOperationsBeforeIncomeTaxesExtraordinaryItemsNoncontrollingInterest=70,
                       InterestIncomeExpenseNet=-15, LiabilitiesAndStockholdersEquity=1000,
                       StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest=420)
    facts.append(("RevenueFromContractWithCustomerExcludingAssessedTax", *YEAR, 1400, *K1))
    r = altman_inputs_from_facts(_facts(*facts)).iloc[0]
    assert r.total_liabilities == 580  # L&SE - equity incl. NCI
    assert r.ebit == 85  # pre-tax income + net interest expense
    assert r.net_sales == 1400
    assert "ebit_from_pretax_income" in r["flags"] and "mve_missing" in r["flags"]
    assert "net_sales=RevenueFromContractWithCustomerExcludingAssessedTax" in r.sources
    # no public float: Z is missing, Z'' (book equity) is not
    assert np.isnan(r.altman_z) and r.zone is None
    assert r.altman_z_double_prime == pytest.approx(altman_z_double_prime(0.15, 0.3, 0.085, 400 / 580))


def test_unclassified_balance_sheet_approximates_working_capital():
    facts = _full_year(AssetsCurrent=None, LiabilitiesCurrent=None, CashAndCashEquivalentsAtCarryingValue=50,
                       AccountsReceivableNet=70, AccountsPayableCurrentAndNoncurrent=40, AccruedLiabilitiesCurrent=20)
    r = altman_inputs_from_facts(_facts(*facts, floats=[("2023-06-30", 2000, K1[0])])).iloc[0]
    assert (r.current_assets, r.current_liabilities) == (120, 60)
    assert "approx:working_capital" in r["flags"] and not np.isnan(r.altman_z)
    bare = _full_year(AssetsCurrent=None, LiabilitiesCurrent=None)
    r = altman_inputs_from_facts(_facts(*bare, floats=[("2023-06-30", 2000, K1[0])])).iloc[0]
    assert "unclassified_balance_sheet" in r["flags"] and np.isnan(r.D) and np.isnan(r.altman_z)


def test_missing_tags_are_flagged_never_zero():
    r = altman_inputs_from_facts(_facts(*_full_year(Revenues=None, RetainedEarningsAccumulatedDeficit=None),
                                        floats=[("2023-06-30", 2000, K1[0])])).iloc[0]
    assert "missing:net_sales" in r["flags"] and "missing:retained_earnings" in r["flags"]
    assert np.isnan(r.net_sales) and np.isnan(r.B) and np.isnan(r.altman_z)


def test_the_10k_own_values_win_over_restatements_and_amendments_do_not_duplicate_years():
    facts = _full_year()
    facts.append(("Assets", None, "2023-12-31", 990, "0000001234-25-000001", "10-K", "2025-02-20"))  # restated later
    facts.append(("Assets", None, "2023-12-31", 1000, "0000001234-24-000009", "10-K/A", "2024-05-01"))  # amendment
    df = altman_inputs_from_facts(_facts(*facts))
    assert len(df[df["period_end"] == "2023-12-31"]) == 1
    assert df.set_index("period_end").loc["2023-12-31", "total_assets"] == 1000
    assert df.set_index("period_end").loc["2023-12-31", "accession"] == K1[0]


def test_quarterly_flows_are_not_taken_for_annual_ones():
    facts = _full_year(OperatingIncomeLoss=None)
    facts.append(("OperatingIncomeLoss", "2023-10-01", "2023-12-31", 25, *K1))  # a quarter inside the 10-K
    r = altman_inputs_from_facts(_facts(*facts)).iloc[0]
    assert np.isnan(r.ebit) and "missing:ebit" in r["flags"]


def test_bad_company_facts_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="companyfacts"):
        altman_inputs_from_facts({"cik": 1})
    with pytest.raises(ValueError, match="companyfacts"):
        altman_inputs_from_facts([])
    assert altman_inputs_from_facts({"cik": 1, "entityName": "X", "facts": {}}).empty


def test_accounting_identities_catch_impossible_balance_sheets():
    bad = pd.DataFrame({"total_assets": [100.0, 100.0, -1.0], "current_assets": [120.0, 10.0, 1.0],
                        "current_liabilities": [5.0, 50.0, 1.0], "total_liabilities": [50.0, 40.0, 1.0],
                        "net_sales": [1.0, 1.0, 1.0], "market_value_equity": [1.0, np.nan, 1.0],
                        "accession": ["a", "b", "c"]})
    v = accounting_identity_violations(bad)
    assert sorted(zip(v["accession"], v["rule"])) == [
        ("a", "current_assets <= total_assets"), ("b", "current_liabilities <= total_liabilities"),
        ("c", "current_assets <= total_assets"), ("c", "total_assets > 0")]


@pytest.mark.skipif(not (SHARED / "edgar").is_dir(), reason="../shared/edgar not present")
def test_bankrupt_companies_land_in_distress_before_failing():
    # Last 10-K filed before each bankruptcy petition.
    cases = {945436: "2016-04-21", 865941: "2019-12-08", 1731289: "2025-02-19", 1657853: "2020-05-22"}
    for cik, failed in cases.items():
        facts = json.loads(gzip.decompress((SHARED / "edgar" / "api" / "xbrl" / "companyfacts" /
                                            f"CIK{cik:010d}.json.gz").read_bytes()))
        df = altman_inputs_from_facts(facts)
        last = df[df["filed"] < failed].iloc[-1]
        zones = {last.zone, last.zone_double_prime} - {None}
        assert zones and zones <= {"distress", "grey"}, (cik, last.zone, last.zone_double_prime)


# -- synthetic financials ---------------------------------------------------------------------------------------------
def test_rating_shares_match_jumpstart_within_two_points():
    # The min-max rescale makes one draw's shares depend on the sample's two extreme firms: across seeds
    # the A and B shares move by ~5 points (sd). The generator is right when the expected shares match
    # JumpStart's; measured over 40 draws of 3,286 firms they are within one point, so within two.
    shares = pd.DataFrame([simulate_financials(3286, seed)["Rating"].value_counts(normalize=True)
                           for seed in range(40)]).reindex(columns=list(RATINGS)).fillna(0).mean() * 100
    for rating, ref in REFERENCE_SHARES.items():
        assert abs(shares[rating] - ref) <= 2.0, (rating, shares[rating], ref)
    investment = sum(shares[r] for r in ("AAA", "AA", "A", "BBB"))
    assert abs(investment - 54.1) <= 2.0


def test_simulated_firms_obey_the_generator_rules():
    df = simulate_financials(3286, seed=42)
    a = altman.FRED_2021Q1
    s = 100 / a.total_assets
    assert len(df) == 3286 and (df["TotalAssets"] == 100).all() and df["firm"].tolist() == list(range(3286))
    for col, anchor in [("CurrentLiabs", a.current_liabilities), ("TotalLiabs", a.total_liabilities),
                        ("RetainedEarnings", a.retained_earnings), ("CurrentAssets", a.current_assets),
                        ("NetSales", a.net_sales), ("EBIT", a.ebit), ("BookEquity", a.book_equity)]:
        assert df[col].between(anchor * s * 0.85, anchor * s * 1.15).all(), col
    p2b = df["MktValueEquity"] / (df["BookEquity"] + df["RetainedEarnings"])
    assert p2b.between(4.75 * 0.85, 4.75 * 1.15).all()
    assert (df["CurrentLiabs"] <= df["TotalLiabs"]).all()
    assert (df["BookEquity"] + df["RetainedEarnings"] + df["TotalLiabs"] <= 100).all()
    assert (df["CurrentAssets"] <= 100).all() and (df["EBIT"] <= df["NetSales"]).all()
    ratios = altman.ratios_from_jumpstart_columns(df)
    assert np.allclose(altman_z(*[ratios[c] for c in "ABCDE"], sales_coefficient=0.99), df["altman_z"])
    assert df["z_scaled"].min() == 0 and df["z_scaled"].max() == pytest.approx(7 - 0.75)
    assert (df["Rating"] == rate_scaled_z(df["z_scaled"])).all()
    assert df.attrs["candidates"] == 3286 + df.attrs["rejected"]
    assert df.attrs["rejections_by_rule"]["EQ + RE + TL > TA"] == df.attrs["rejected"]  # the binding rule


def test_simulation_is_seeded_and_prefix_stable():
    a, b = simulate_financials(500, seed=7), simulate_financials(500, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["EBIT"], simulate_financials(500, seed=8)["EBIT"])
    big = simulate_financials(2000, seed=7)
    cols = ["CurrentLiabs", "TotalLiabs", "EBIT", "MktValueEquity", "altman_z", "z_noisy"]
    assert np.allclose(a[cols].to_numpy(), big[cols].to_numpy()[:500])


def test_simulation_knobs():
    quiet = simulate_financials(2000, seed=1, z_noise=0.0)
    assert np.allclose(quiet["z_noisy"], quiet["altman_z"])
    shifted = simulate_financials(200, seed=1, anchors={"price_to_book": 2.0})
    assert shifted["MktValueEquity"].mean() < 0.6 * simulate_financials(200, seed=1)["MktValueEquity"].mean()


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 1}, "n must be an integer >= 2"),
    ({"n": "100"}, "n must be an integer"),
    ({"n": True}, "n must be an integer"),
    ({"n": 10, "perturbation": 2.5}, "perturbation"),
    ({"n": 10, "z_noise": -0.1}, "z_noise"),
    ({"n": 10, "z_scale": 0}, "z_scale"),
    ({"n": 10, "anchors": {"ebit": -5}}, r"anchors.ebit: must be a positive"),
    ({"n": 10, "anchors": {"total_equity": 5}}, "unknown field"),
    ({"n": 10, "anchors": {"current_assets": 2e7}}, "exceed total_assets"),
    ({"n": 10, "anchors": {"total_liabilities": 2e7}, "max_candidates": 5000}, "only 0 of 10 firms accepted"),
])
def test_simulation_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_financials(**kwargs)


@pytest.mark.skipif(not (SHARED / "reference" / "ccr_tabular_data.csv").is_file(),
                    reason="../shared/reference/ccr_tabular_data.csv not present")
def test_simulated_distributions_match_the_reference_table():
    ref = pd.read_csv(SHARED / "reference" / "ccr_tabular_data.csv")
    sim = simulate_financials(len(ref), seed=42)
    for col in altman.JUMPSTART_COLUMNS:
        assert sim[col].mean() == pytest.approx(ref[col].mean(), rel=0.01), col
        assert sim[col].std() == pytest.approx(ref[col].std(), rel=0.08), col
        assert sim[col].min() >= ref[col].min() * 0.98 and sim[col].max() <= ref[col].max() * 1.02, col


# -- rank join -------------------------------------------------------------------------------------------------------
def _scores(n: int, rng) -> pd.DataFrame:
    df = pd.DataFrame({k: rng.random(n) * 0.1 for k in altman.NLP_SCORES})
    df["accession"] = [f"acc-{i}" for i in range(n)]
    return df


def test_text_rank_subtracts_negative_unless_replicating_the_bug():
    base = {k: 0.05 for k in altman.NLP_SCORES}
    units = pd.DataFrame([base, {**base, "negative": 0.09}])
    fixed = text_rank(units)
    buggy = text_rank(units, replicate_negative_sign_bug=True)
    assert fixed[1] < fixed[0] and fixed[0] - fixed[1] == pytest.approx(0.04)
    assert buggy[1] > buggy[0] and buggy[1] - buggy[0] == pytest.approx(0.04)
    assert fixed[0] == pytest.approx(5 * 0.05 - 5 * 0.05)


def test_text_rank_refuses_missing_scores():
    units = pd.DataFrame([{k: 0.1 for k in altman.NLP_SCORES}, {k: 0.1 for k in altman.NLP_SCORES}])
    units.loc[1, "fraud"] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) have NaN scores in \['fraud'\]"):
        text_rank(units)
    with pytest.raises(ValueError, match="missing column"):
        text_rank(units.drop(columns="safe"))


def test_rank_join_pairs_best_text_with_highest_noisy_z():
    rng = np.random.default_rng(0)
    firms = simulate_financials(50, seed=3)
    units = _scores(50, rng)
    joined = rank_join(firms, units)
    assert len(joined) == 50 and {"z_noisy", "z_scaled"}.isdisjoint(joined.columns)
    assert {"accession", "Rating", "EBIT", *altman.NLP_SCORES} <= set(joined.columns)
    ranks = text_rank(joined)
    assert ranks.is_monotonic_decreasing
    best_firm = firms.loc[firms["z_noisy"].idxmax(), "firm"]
    assert joined.loc[0, "firm"] == best_firm
    assert joined.loc[0, "accession"] == units.loc[text_rank(units).idxmax(), "accession"]
    order = [RATINGS.index(r) for r in joined["Rating"]]
    assert order == sorted(order)  # ratings fall as the text rank falls
    with pytest.raises(ValueError, match="50 firms but 49 text units"):
        rank_join(firms, units.iloc[:49])
    with pytest.raises(ValueError, match="share column"):
        rank_join(firms, units.assign(EBIT=1.0))


# -- text units ------------------------------------------------------------------------------------------------------
def _sentences(n: int, words: int = 10) -> str:
    return " ".join(f"Sentence {i} has " + " ".join(["word"] * (words - 4)) + " here." for i in range(n))


def test_passages_are_sentence_aligned_windows():
    text = _sentences(120)  # 1,200 words in 10-word sentences
    passages = split_passages(text, window_words=100)
    assert len(passages) == 12
    assert all(len(p.split()) == 100 for p in passages)
    assert all(p.startswith("Sentence") and p.endswith("here.") for p in passages)
    overlapping = split_passages(text, window_words=100, stride_words=50)
    assert len(overlapping) == 23 and overlapping[1].split()[:2] == ["Sentence", "5"]


def test_passages_keep_a_short_tail_with_the_previous_window_and_cut_giant_sentences():
    tailed = split_passages(_sentences(124), window_words=100)  # a 40-word tail is not a passage of its own
    assert [len(p.split()) for p in tailed] == [100] * 11 + [140]
    assert len(split_passages(_sentences(125), window_words=100)) == 13  # a 50-word one is
    assert [len(p.split()) for p in split_passages(_sentences(14), window_words=100)] == [140]
    giant = "Table " + " ".join(str(i) for i in range(450)) + "."
    pieces = split_passages(giant, window_words=200)
    assert [len(p.split()) for p in pieces] == [200, 251]  # 200 + 200 + a 51-word tail
    assert split_passages("", window_words=100) == []


@pytest.mark.parametrize("args, error", [((123,), TypeError), (("text", 10), ValueError), (("text", 100, 0), ValueError),
                                         (("text", 100, 101), ValueError)])
def test_passages_reject_bad_arguments(args, error):
    with pytest.raises(error):
        split_passages(*args)


def test_text_units_are_mdnas_when_enough_else_passages():
    sections = pd.DataFrame({
        "accession": ["k1", "k1", "q1", "q1", "k2"], "cik": [1, 1, 2, 2, 3],
        "form": ["10-K", "10-K", "10-Q", "10-Q", "10-K"], "item": ["7", "2", "I-2", "2", "7"],
        "text": [_sentences(120), _sentences(50), _sentences(60), _sentences(50), "  "]})
    units, kind = text_units(sections, min_units=2)
    assert kind == "mdna" and units["accession"].tolist() == ["k1", "q1"] and (units["passage"] == -1).all()
    assert units["n_words"].tolist() == [1200, 600]
    units, kind = text_units(sections, min_units=3, window_words=100)
    assert kind == "passage" and units["accession"].value_counts().to_dict() == {"k1": 12, "q1": 6}
    assert units.groupby("accession")["passage"].apply(list)["q1"] == list(range(6))
    assert {"cik", "form", "item", "text", "n_words"} <= set(units.columns)
