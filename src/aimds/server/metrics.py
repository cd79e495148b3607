"""Prometheus metrics; correct with several worker processes (prometheus_client's multiprocess mode).

``aimds serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory under the data directory before
the workers start; each worker writes its samples there and ``/metrics`` aggregates them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from aimds.types import Verdict

TIER_STAGES = frozenset({"normalize", "tier1", "tier2", "session", "total", "stream"})
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's metrics, in a private registry (so several apps can live in one process)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("aimds_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("aimds_http_request_duration_seconds", "HTTP request latency by route",
                                         ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.detections = Counter("aimds_detections", "Verdicts by action", ["action"], registry=r)
        self.categories = Counter("aimds_detection_categories", "Threat categories in verdicts", ["category"],
                                  registry=r)
        self.stage_seconds = Histogram("aimds_stage_latency_seconds", "Latency of normalisation, tiers, total",
                                       ["stage"], buckets=_LATENCY_BUCKETS, registry=r)
        self.tier_errors = Counter("aimds_tier_errors", "Detector errors and timeouts", ["detector", "kind"],
                                   registry=r)
        self.store_write_seconds = Histogram("aimds_store_write_seconds", "Group-commit transaction latency",
                                             buckets=_LATENCY_BUCKETS, registry=r)
        self.store_batch = Histogram("aimds_store_batch_records", "Records per group commit",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048), registry=r)
        self.store_queue = Gauge("aimds_store_queue_depth", "Records waiting for the store writer", registry=r,
                                 multiprocess_mode="livesum")
        self.responses = Counter("aimds_response_actions", "Response actions by kind, priority and outcome",
                                 ["kind", "priority", "outcome"], registry=r)
        self.response_latency = Histogram("aimds_response_action_latency_seconds",
                                          "Time from planning a response action to running it", ["priority"],
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("aimds_rate_limited", "Requests rejected by the rate limit", registry=r)

    def observe_verdict(self, verdict: Verdict) -> None:
        """Count a verdict and record its per-stage latencies."""
        self.detections.labels(str(verdict.action)).inc()
        for c in verdict.categories:
            self.categories.labels(str(c)).inc()
        for stage, us in verdict.latency_us.items():
            if stage in TIER_STAGES:  # per tier, not per detector: a few observations per request
                self.stage_seconds.labels(stage).observe(us / 1e6)
        for e in verdict.errors:
            self.tier_errors.labels(e.detector, e.kind).inc()

    def observe_response(self, outcome: str, action: Any, info: Mapping[str, Any]) -> None:
        """Scheduler hook: executed / missed (deadline) / shed / retry / failed."""
        priority = action.priority.label
        self.responses.labels(str(action.kind), priority, outcome).inc()
        if outcome == "executed" and "latency_ms" in info:
            self.response_latency.labels(priority).observe(float(info["latency_ms"]) / 1000)

    def observe_commit(self, records: int, seconds: float) -> None:
        """Record one group commit."""
        self.store_write_seconds.observe(seconds)
        self.store_batch.observe(records)

    def render(self) -> bytes:
        """The exposition text: all workers' samples in multiprocess mode, else this registry's."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
