"""Running the worker as a process: metrics endpoint, signals, a shutdown deadline."""

from __future__ import annotations

import logging
import os
import signal
import threading

from faust.worker import Worker
from prometheus_client import start_http_server

from monitor.metrics import Metrics
from monitor.worker.app import create_app
from monitor.worker.settings import SettingsError, WorkerSettings

log = logging.getLogger("aifm.worker")

#: A graceful stop that has not finished by then (a broker gone away can stall it) is cut short.
SHUTDOWN_DEADLINE_SECONDS = 8.0


class _Worker(Worker):
    """faust's worker, with a deadline on shutdown: SIGTERM always ends the process."""

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            timer = threading.Timer(SHUTDOWN_DEADLINE_SECONDS, _force_exit)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signum)


def _force_exit() -> None:
    log.error("graceful shutdown did not finish within %.0f s; exiting now (state resumes from the last checkpoint)", SHUTDOWN_DEADLINE_SECONDS)
    logging.shutdown()
    os._exit(0)


def start_metrics(settings: WorkerSettings, metrics: Metrics):
    """Serve /metrics on the configured address; returns the server (or None when port is 0)."""
    if settings.metrics_port == 0:
        return None
    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_bind, registry=metrics.registry)
    except OSError as error:
        raise SettingsError(
            f"metrics port: cannot serve /metrics on {settings.metrics_bind}:{settings.metrics_port} ({error.strerror}); "
            "choose another with --metrics-port / AIFM_METRICS_PORT (0: none)"
        ) from None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_bind, settings.metrics_port)
    return server


def run_worker(settings: WorkerSettings, *, loglevel: str = "info", app_hook=None) -> None:
    """Run until SIGTERM / SIGINT. ``app_hook(app)`` may add agents or tasks (the demo does)."""
    metrics = Metrics()
    app = create_app(settings, metrics=metrics)
    if app_hook is not None:
        app_hook(app)
    server = start_metrics(settings, metrics)
    try:
        _Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        if server is not None:
            server.shutdown()
