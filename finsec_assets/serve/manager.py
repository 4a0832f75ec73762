"""Which version of each model is loaded, and the background poll that loads new ones.

A :class:`ModelSlot` holds the current loaded model of one asset. The poller asks the registry for the
published version; when it differs from the loaded one it loads the new version on the poll thread
and then swaps one reference. Requests read the reference once, so a request never sees half a
switch and none fails during one. A version that fails to load is logged and the old one keeps
serving.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .registry import Published

log = logging.getLogger("finsec_assets.serve")


class ModelUnavailable(RuntimeError):
    """No version of a model can answer; ``asset`` is what to materialize (answered with 503)."""

    def __init__(self, asset: str, message: str):
        super().__init__(message)
        self.asset = asset


@dataclass
class ModelSlot:
    asset: str
    endpoint: str
    probe: Callable[[], Published | None]
    load: Callable[[Published], Any]
    current: Any = None
    state: str = "not_checked"  # not_checked | loading | loaded | not_published | failed
    error: str | None = None
    failed_version: str | None = None
    loaded_at: float | None = None
    switches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self):
        model = self.current
        if model is not None:
            return model
        if self.state == "not_published":
            raise ModelUnavailable(self.asset, f"no {self.asset} is published yet: materialize {self.asset} (Dagster UI, or "
                                               f"`dagster asset materialize -m finsec_assets.definitions --select {self.asset}`), "
                                               "then retry")
        if self.state == "failed":
            raise ModelUnavailable(self.asset, f"{self.asset} could not be loaded: {self.error}")
        raise ModelUnavailable(self.asset, f"{self.asset} is still loading; retry shortly")

    def refresh(self) -> bool:
        """Load the published version if it is new; True when the served model changed."""
        with self._lock:
            try:
                published = self.probe()
            except Exception as exc:  # noqa: BLE001 - storage unreachable: keep serving what is loaded
                log.warning("%s: could not check for a new version: %s", self.asset, exc)
                if self.current is None:
                    self.state, self.error = "failed", f"could not read where it is published: {exc}"
                return False
            if published is None:
                if self.current is None:
                    self.state = "not_published"
                return False
            if self.current is not None and self.current.published.version == published.version:
                return False
            if published.version == self.failed_version:
                return False  # tried and failed; wait for the next version
            if self.current is None:
                self.state = "loading"
            log.info("%s: loading version %s", self.asset, published.version)
            started = time.perf_counter()
            try:
                model = self.load(published)
            except Exception as exc:  # noqa: BLE001 - reported in /v1/models and the log, old version kept
                log.error("%s: version %s failed to load: %s\n%s", self.asset, published.version, exc,
                          traceback.format_exc())
                self.failed_version, self.error = published.version, f"version {published.version}: {exc}"
                if self.current is None:
                    self.state = "failed"
                return False
            previous = self.current
            self.current, self.state, self.error, self.failed_version = model, "loaded", None, None
            self.loaded_at = time.time()
            if previous is not None:
                self.switches += 1
            log.info("%s: serving version %s (loaded in %.1fs)", self.asset, published.version,
                     time.perf_counter() - started)
            return True

    def describe(self) -> dict:
        model = self.current
        out = {"asset": self.asset, "endpoint": self.endpoint, "state": self.state}
        if model is not None:
            p: Published = model.published
            out.update(version=p.version, published_at=p.published_at, uri=p.uri, materialization=p.materialization,
                       detail={k: v for k, v in p.detail.items() if k not in ("rows", "signature")},
                       loaded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)), switches=self.switches)
        if self.error:
            out["error"] = self.error
        if self.state == "not_published":
            out["hint"] = f"materialize {self.asset}"
        return out


class ModelManager:
    """The slots, an initial load and a poll thread."""

    def __init__(self, slots: list[ModelSlot], poll_seconds: float):
        self.slots = {s.asset: s for s in slots}
        self.poll_seconds = poll_seconds
        self.first_pass_done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def slot(self, asset: str) -> ModelSlot:
        return self.slots[asset]

    def refresh_all(self) -> None:
        for slot in self.slots.values():
            if self._stop.is_set():
                return
            slot.refresh()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="model-poller", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.refresh_all()
        self.first_pass_done.set()
        while not self._stop.wait(self.poll_seconds):
            self.refresh_all()

    def stop(self) -> None:
        self._stop.set()

    @property
    def ready(self) -> bool:
        return self.first_pass_done.is_set() and not any(s.state == "loading" for s in self.slots.values())
