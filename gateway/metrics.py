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
            "Sheets served, by model version, traffic route and model",
            ["version", "route", "model"],
            registry=self.registry,
        )
        self.served_version = Gauge(
            "gateway_served_version",
            "Per traffic route (latest, stable, canary) and model, the version that answered the "
            "request that started last",
            ["route", "model"],
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
            "Training jobs started by train-on-miss (of either model)",
            registry=self.registry,
        )
        self.held = Counter(
            "gateway_held_total",
            "Requests of clients that came back before their Retry-After, held until then",
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "gateway_connections_closed_total",
            "Connections the gateway closed: idle ones to make room, heads too slow or too big",
            ["reason"],
            registry=self.registry,
        )
        self.upstream_up = Gauge(
            "gateway_upstream_up",
            "1 while the model server answers its status call",
            registry=self.registry,
        )
        self.upstream_ready = Gauge(
            "gateway_upstream_ready",
            "1 while the model server has a version AVAILABLE",
            registry=self.registry,
        )
        self.upstream_available = Gauge(
            "gateway_upstream_available_versions",
            "Versions the model server reports AVAILABLE",
            registry=self.registry,
        )
        self.model_up = Gauge(
            "gateway_model_up",
            "Per model (the first and the class-conditional one), 1 while its status call answers",
            ["model"],
            registry=self.registry,
        )
        self.model_available = Gauge(
            "gateway_model_available_versions",
            "Per model, the versions the model server reports AVAILABLE",
            ["model"],
            registry=self.registry,
        )
        self.base_path_readable = Gauge(
            "gateway_base_path_readable",
            "1 while MODEL_BASE_PATH can be listed; alert on 0 (train-on-miss is then off)",
            registry=self.registry,
        )
        self.base_path_errors = Counter(
            "gateway_base_path_errors_total",
            "Listings of MODEL_BASE_PATH that failed or passed their deadline",
            registry=self.registry,
        )
        self.body_bytes = Gauge(
            "gateway_body_bytes_held",
            "Bytes of request bodies held in memory now (GATEWAY_MAX_BUFFERED_BYTES caps it)",
            registry=self.registry,
        )
