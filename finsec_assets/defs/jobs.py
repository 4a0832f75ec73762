"""The two jobs automation launches: one quarter of per-filing assets, and the corpus-level models."""

import dagster as dg

from .common import quarter_partitions

QUARTER_REFRESH = "quarter_refresh"
CORPUS_REFRESH = "corpus_refresh"


def build_jobs(assets: list) -> list:
    """quarter_refresh: every quarter-partitioned asset; corpus_refresh: every unpartitioned asset but the universe."""
    specs = [spec for a in assets for spec in a.specs]
    quarterly = [s.key for s in specs if s.partitions_def == quarter_partitions]
    corpus = [s.key for s in specs if s.partitions_def is None and s.key.path[-1] != "company_universe"]
    jobs = [dg.define_asset_job(QUARTER_REFRESH, selection=dg.AssetSelection.assets(*quarterly), partitions_def=quarter_partitions,
                                description="One filing quarter: index, documents, sections, scores, summaries, embeddings.")]
    if corpus:
        jobs.append(dg.define_asset_job(CORPUS_REFRESH, selection=dg.AssetSelection.assets(*corpus),
                                        description="Corpus-level assets: XBRL Altman inputs, checkpoints, credit data and models."))
    return jobs
