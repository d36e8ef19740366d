"""The faust entry point: ``faust -A monitor.app worker`` (configured by ``AIFM_*`` variables).

``aifm worker`` does the same and also serves /metrics; with plain faust, set
``AIFM_METRICS_PORT`` and the endpoint is started here.
"""

from monitor.worker.app import create_app
from monitor.worker.run import start_metrics
from monitor.worker.settings import settings_from

settings = settings_from()
app = create_app(settings)
metrics_server = start_metrics(settings, app.metrics)
