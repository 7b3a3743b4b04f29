"""Prometheus metrics for WebSockets: the recipe of docs/groups.md, verbatim."""

from django.dispatch import receiver
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

import django_websocket
from django_websocket.signals import websocket_disconnected

SESSIONS_ENDED = Counter(
    "websocket_sessions_ended", "WebSocket sessions ended, by close code", ["code"]
)
SESSION_SECONDS = Histogram("websocket_session_seconds", "How long WebSocket sessions lasted")


@receiver(websocket_disconnected, dispatch_uid="metrics.websocket_disconnected")
def count_ended_session(sender, close_code, duration, **kwargs):
    SESSIONS_ENDED.labels(code=str(close_code)).inc()
    SESSION_SECONDS.observe(duration)


class OpenWebSockets:
    """Read django_websocket.stats() at each scrape: open sockets of this process, by view."""

    def collect(self):
        gauge = GaugeMetricFamily(
            "websocket_open", "Open WebSockets in this process, by view", labels=["view"]
        )
        for view, count in django_websocket.stats()["by_view"].items():
            gauge.add_metric([view], count)
        yield gauge


REGISTRY.register(OpenWebSockets())
