"""The one Definitions object: every asset, check, job, schedule, sensor, resource and the executor."""

import dagster as dg

from .defs import common, executors, jobs, maintenance
from .defs.edgar import assets as edgar_assets
from .defs.edgar import schedules as edgar_schedules
from .defs.edgar import sensors as edgar_sensors
from .defs.credit import assets as credit_assets
from .defs.embeddings import assets as embeddings_assets
from .defs.embeddings import checks as embeddings_checks
from .defs.language_models import assets as language_models_assets
from .defs.text import assets as text_assets
from .defs.understanding import datasets as understanding_datasets
from .defs.understanding import models as understanding_models
from .defs.xbrl import assets as xbrl_assets

ASSET_MODULES = [edgar_assets, text_assets, embeddings_assets, language_models_assets, credit_assets, xbrl_assets,
                 understanding_datasets, understanding_models]
CHECK_MODULES = [*ASSET_MODULES, embeddings_checks]

all_assets = dg.load_assets_from_modules(ASSET_MODULES)
all_jobs = jobs.build_jobs(all_assets)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=dg.load_asset_checks_from_modules(CHECK_MODULES),
    jobs=all_jobs + [maintenance.lake_maintenance, edgar_sensors.material_event_refresh, edgar_sensors.rating_refresh],
    schedules=[edgar_schedules.edgar_daily_refresh]
    + ([edgar_schedules.weekly_model_refresh] if any(j.name == jobs.CORPUS_REFRESH for j in all_jobs) else [])
    + [maintenance.lake_maintenance_schedule],
    sensors=[edgar_sensors.new_filings_sensor, edgar_sensors.universe_backfill_sensor, edgar_sensors.material_event_sensor],
    resources={
        "finsec": common.FinsecResource(),
        "io_manager": common.LakeIOManager(finsec=common.FinsecResource()),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
    executor=executors.run_executor(),
)
