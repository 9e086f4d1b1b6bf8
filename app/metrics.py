"""Prometheus metrics. One registry per app instance (no module-level global collectors).

With several workers, `vae-serve` gives them a shared directory in PROMETHEUS_MULTIPROC_DIR, and
prometheus_client then keeps every metric in a file per worker there. A scrape reaches one worker, which
adds up the files of all of them, so it sees the whole service, and counts survive a worker's restart.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.workers import METRICS_DIR_VARIABLE

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
P_VALUE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Set by `vae-serve` before any worker imports prometheus_client, which then keeps every metric there.
        self._shared_directory = os.environ.get(METRICS_DIR_VARIABLE)
        self.request_latency = Histogram(
            "vae_request_duration_seconds", "HTTP request latency", ["method", "route", "status"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        # p-values, not raw scores: they mean the same on every model and score scale (some scores are
        # log-scale and negative), and on normal traffic about 1 % of them fall at or below 0.01.
        self.p_value = Histogram(
            "vae_p_value", "Conformal p-value of each scored image (small = unusual for normal images; "
            "comparable across models)", buckets=P_VALUE_BUCKETS, registry=self.registry)
        self.scored = Counter("vae_images_scored_total", "Images scored", registry=self.registry)
        self.anomalies = Counter("vae_anomalies_total", "Images judged anomalous", registry=self.registry)
        self.batch_size = Histogram("vae_model_batch_size", "Images per model call (dynamic batching)",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        # With several workers, a gauge is the value its worker set last ("mostrecent"), not a sum.
        self.model_version = Gauge("vae_model_version", "Version of the model being served", ["name"],
                                   registry=self.registry, multiprocess_mode="mostrecent")
        self.model_swaps = Counter("vae_model_swaps_total", "Model versions loaded", registry=self.registry)
        # Many replays mean clients retry often: answers are lost, or their timeouts are too short.
        self.replays = Counter("vae_idempotent_replays_total", "Requests answered with the stored result of an "
                               "earlier request with the same Idempotency-Key", registry=self.registry)
        # A rising share of reviews that disagree means the threshold no longer fits the line (recalibrate).
        self.reviews = Counter("vae_reviews_total", "Reviews given (PUT /results/{id}/review), by the reviewer's "
                               "verdict and whether it agrees with the model's", ["verdict", "agreement"],
                               registry=self.registry)
        # The operators' backlog, counted when scraped: an alert on it says that flags wait unseen.
        self.unreviewed_flags = Gauge("vae_unreviewed_flags", "Flagged results nobody has reviewed yet, of those "
                                      "retention kept (NaN when the results store cannot be read)",
                                      registry=self.registry, multiprocess_mode="mostrecent")
        # Results refused unseen would be lost records: without traffic, only this tells that the store failed.
        self.store_writable = Gauge("vae_results_store_writable", "1 while results are stored; 0 while the "
                                   "results store refuses them (its file removed or replaced under the service, "
                                   "or its last write failed)", registry=self.registry,
                                   multiprocess_mode="mostrecent")

    def record_swap(self, name: str, version: int) -> None:
        """A model version was loaded and is now served. In memory, the series of an earlier model name is
        dropped; with several workers prometheus_client cannot drop one, and warns if asked to."""
        if not self._shared_directory:
            self.model_version.clear()
        self.model_version.labels(name).set(version)
        self.model_swaps.inc()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format: of this worker, or added up over all of them."""
        if not self._shared_directory:
            return generate_latest(self.registry)
        workers = CollectorRegistry()
        MultiProcessCollector(workers, self._shared_directory)
        return generate_latest(workers)
