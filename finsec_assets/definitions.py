"""The one Definitions object: every asset, check, job, schedule, sensor, resource and the executor."""

from __future__ import annotations

import dagster as dg

from .defs import common, executors
from .defs.edgar import assets as edgar_assets

ASSET_MODULES = [edgar_assets]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(ASSET_MODULES),
    asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
    resources={
        "finsec": common.FinsecResource(),
        "io_manager": common.ParquetTableIOManager(finsec=common.FinsecResource()),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
    executor=executors.run_executor(),
)
