"""Prometheus metrics. One registry per app instance (no module-level global collectors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_RATIO_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0, 8.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "vae_request_duration_seconds", "HTTP request latency", ["method", "route", "status"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.score_ratio = Histogram(
            "vae_score_to_threshold_ratio", "Anomaly score divided by the threshold used "
            "(comparable across models; > 1 means anomalous)", buckets=SCORE_RATIO_BUCKETS,
            registry=self.registry)
        self.scored = Counter("vae_images_scored_total", "Images scored", registry=self.registry)
        self.anomalies = Counter("vae_anomalies_total", "Images judged anomalous", registry=self.registry)
        self.batch_size = Histogram("vae_model_batch_size", "Images per model call (dynamic batching)",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.model_version = Gauge("vae_model_version", "Version of the model being served", ["name"],
                                   registry=self.registry)
        self.model_swaps = Counter("vae_model_swaps_total", "Model versions loaded", registry=self.registry)
