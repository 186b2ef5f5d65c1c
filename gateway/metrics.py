"""Prometheus metrics of one gateway app (its own registry, so several apps in one process -
tests, benchmarks - never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_requests_total",
            "HTTP answers by route and status code (499: the client left first)",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "Time to answer, by route",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Model server faults by backend and HTTP status given",
            ["backend", "status"],
            registry=self.registry,
        )
        self.batch_images = Histogram(
            "gateway_batch_images",
            "Images per model call",
            buckets=(1, 9, 18, 36, 72, 144, 288),
            registry=self.registry,
        )
        self.sheets = Counter(
            "gateway_sheets_total",
            "Sheets served, by model version and traffic route",
            ["version", "route"],
            registry=self.registry,
        )
        self.served_version = Gauge(
            "gateway_served_version",
            "Newest model version that answered a request",
            registry=self.registry,
        )
        self.rejected = Counter(
            "gateway_rejected_total",
            "Requests refused (503) to keep the queue short: overloaded, or waited too long",
            ["reason"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "gateway_dropped_total",
            "Queued requests not computed: the client went away, or it waited too long",
            ["reason"],
            registry=self.registry,
        )
        self.training_jobs = Counter(
            "gateway_training_jobs_started_total",
            "Training jobs started by train-on-miss",
            registry=self.registry,
        )
