"""Settings from config/proftask.yaml, with SkyWalking's ${ENV:default} substitution."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any

import yaml

from proftask.auth import TokenGrant, parse_token_list

DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[1] / "config" / "proftask.yaml"
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):(.*)\}$")


class ConfigError(ValueError):
    """A setting proftask cannot take; the message names it (and its variable) and what it takes."""


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    """Days a tenant's task rows stay in ClickHouse (0: kept)."""
    default_days: int = 0
    tenant_days: tuple[tuple[str, int], ...] = ()

    def days_for(self, tenant: str) -> int:
        return dict(self.tenant_days).get(tenant, self.default_days)


def _retention(raw: dict | None) -> RetentionPolicy:
    raw = raw or {}
    tenants = raw.get("tenants") or ""
    pairs = tenants.items() if isinstance(tenants, dict) else (
        item.split("=", 1) for item in str(tenants).split(",") if item.strip())
    try:
        days = tuple((str(t).strip(), _days(d)) for t, d in pairs)
    except ValueError:
        raise ConfigError(f"proftask.retention.tenants (PROFTASK_RETENTION_TENANTS) {str(tenants)!r}: expected "
                          "tenant=days,… with days a whole number from 0 to 65535") from None
    try:
        default_days = _days(raw.get("defaultDays") or 0)
    except ValueError:
        raise ConfigError(f"proftask.retention.defaultDays (PROFTASK_RETENTION_DAYS) {raw.get('defaultDays')!r}: "
                          "expected a whole number of days from 0 to 65535") from None
    return RetentionPolicy(default_days, days)


def _days(raw: Any) -> int:
    days = int(str(raw).strip())
    if not 0 <= days <= 65535:
        raise ValueError(days)
    return days


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """How long an HTTP client may take, and how many may be connected (proftask.http.connections)."""
    header_timeout_s: float = 20.0  # from connect (or the next request's first byte) to its last header
    body_idle_timeout_s: float = 60.0  # longest wait for the next byte of a request body, not a total
    keepalive_timeout_s: float = 75.0  # an idle keep-alive connection is closed after this long
    # Open connections of this process; more are answered 503 and closed. 5,000 long-polling
    # agents on one task_svc is a measured load (bench.load); the open-files limit also caps it.
    max_connections: int = 10_000


@dataclasses.dataclass
class Settings:
    data_dir: pathlib.Path
    pprof_max_size: int
    memory_parser_enabled: bool
    decompressed_max_size: int
    http_host: str
    http_port: int
    max_json_body: int
    grpc_host: str
    grpc_port: int
    kafka_bootstrap: str
    topic_prefix: str
    partitions: int
    replication_factor: int
    clickhouse_dsn: str
    task_grace_ms: int
    decision_timeout_s: float
    tokens: list[TokenGrant] = dataclasses.field(default_factory=list)
    clickhouse_cluster: str = ""
    retention: RetentionPolicy = RetentionPolicy()
    grpc_tenant_listeners: tuple[tuple[str, str, int], ...] = ()  # (tenant, host, port)
    http_limits: HttpLimits = HttpLimits()
    spool_dir: pathlib.Path | None = None  # file-mode uploads; None: <data_dir>/spool
    upload_budget_bytes: int = 128 * 1024 * 1024
    cpu_workers: int = 0  # processes folding and checking profiles; 0: one per core this process may use, at most 8


def _substitute(node: Any, env: dict[str, str]) -> Any:
    """Replace ${NAME:default} scalars; the result is re-read as YAML so types stay right."""
    if isinstance(node, dict):
        return {k: _substitute(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env) for v in node]
    if isinstance(node, str):
        m = _PLACEHOLDER.match(node.strip())
        if m:
            raw = env.get(m.group(1), m.group(2))
            return yaml.safe_load(raw) if raw != "" else ""
    return node


def load_settings(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    path = pathlib.Path(path or env.get("PROFTASK_CONFIG") or DEFAULT_CONFIG)
    if not path.exists():
        raise SystemExit(f"proftask: config file {path} not found (set PROFTASK_CONFIG)")
    try:
        return _settings(_substitute(yaml.safe_load(path.read_text()), env))
    except ConfigError:
        raise
    except ValueError as e:  # a value that is not of its setting's type ("eighty" for a port)
        raise ConfigError(f"{path}: {type(e).__name__}: {e}") from e


def _settings(raw: dict) -> Settings:
    receiver = raw["receiver-pprof"][raw["receiver-pprof"].get("selector") or "default"]
    p = raw["proftask"]
    data_dir = pathlib.Path(str(p["dataDir"])).expanduser().resolve()
    dsn = str(p["clickhouse"]["dsn"] or "")
    tokens = _token_grants((p.get("auth") or {}).get("tokens"))
    return Settings(
        data_dir=data_dir,
        pprof_max_size=int(receiver["pprofMaxSize"]),
        memory_parser_enabled=bool(receiver["memoryParserEnabled"]),
        decompressed_max_size=int(p["pprof"]["decompressedMaxSize"]),
        http_host=str(p["http"]["host"]),
        http_port=int(p["http"]["port"]),
        max_json_body=int(p["http"]["maxJsonBody"]),
        grpc_host=str(p["grpc"]["host"]),
        grpc_port=int(p["grpc"]["port"]),
        kafka_bootstrap=str(p["kafka"]["bootstrap"]),
        topic_prefix=str(p["kafka"]["topicPrefix"]),
        partitions=int(p["kafka"]["partitions"]),
        replication_factor=int(p["kafka"]["replicationFactor"]),
        clickhouse_dsn=dsn or f"chdb://{data_dir / 'clickhouse'}",
        task_grace_ms=int(p["tasks"]["graceMinutes"]) * 60_000,
        decision_timeout_s=float(p["tasks"]["decisionTimeoutSeconds"]),
        tokens=tokens,
        clickhouse_cluster=str(p["clickhouse"].get("cluster") or ""),
        retention=_retention(p.get("retention")),
        http_limits=_http_limits(p["http"]),
        spool_dir=pathlib.Path(str(p["pprof"].get("spoolDir") or data_dir / "spool")).expanduser().resolve(),
        grpc_tenant_listeners=_tenant_listeners(p["grpc"].get("tenantListeners"), tokens),
        upload_budget_bytes=int((p.get("upload") or {}).get("budgetBytes") or Settings.upload_budget_bytes),
        cpu_workers=_cpu_workers((p.get("cpu") or {}).get("workers")),
    )


def _cpu_workers(raw: Any) -> int:
    try:
        workers = int(str(raw if raw not in (None, "") else 0).strip())  # "2.5" and true are no counts
    except ValueError:
        workers = -1
    if not 0 <= workers <= 256:
        raise ConfigError(f"proftask.cpu.workers (PROFTASK_CPU_WORKERS) {raw!r}: expected a whole number from 0 "
                          "(one worker per core, at most 8) to 256")
    return workers


def _http_limits(http: dict) -> HttpLimits:
    limits = HttpLimits(
        header_timeout_s=float(http.get("headerTimeoutSeconds", HttpLimits.header_timeout_s)),
        body_idle_timeout_s=float(http.get("bodyIdleTimeoutSeconds", HttpLimits.body_idle_timeout_s)),
        keepalive_timeout_s=float(http.get("keepAliveTimeoutSeconds", HttpLimits.keepalive_timeout_s)),
        max_connections=int(http.get("maxConnections", HttpLimits.max_connections)),
    )
    if min(limits.header_timeout_s, limits.body_idle_timeout_s, limits.keepalive_timeout_s) <= 0 \
            or limits.max_connections < 1:
        raise ConfigError(f"proftask.http timeouts must be positive and maxConnections at least 1: {limits}")
    return limits


def _tenant_listeners(raw: Any, tokens: list[TokenGrant]) -> tuple[tuple[str, str, int], ...]:
    """`tenant=host:port,…`: each a gRPC listener whose token-less calls are that tenant's agent."""
    listeners = []
    for item in (part.strip() for part in str(raw or "").split(",")):
        if not item:
            continue
        tenant, _, address = item.partition("=")
        host, _, port = address.strip().rpartition(":")
        tenant = tenant.strip()
        if not tenant or not host or not port.isdigit():
            raise ConfigError(f"gRPC tenant listener {item!r}: expected tenant=host:port")
        listeners.append((tenant, host, int(port)))
    known = {g.tenant for g in tokens}
    for tenant, host, number in listeners:
        if tenant not in known:
            raise ConfigError(f"gRPC tenant listener {host}:{number} is bound to tenant {tenant!r}, which no token "
                             "has (tenant listeners need auth on: PROFTASK_TOKENS)")
    return tuple(listeners)


def _token_grants(raw: Any) -> list[TokenGrant]:
    if not raw:
        return []
    if isinstance(raw, str):
        return parse_token_list(raw)
    return [TokenGrant(str(t["token"]), str(t["tenant"]), str(t["role"])) for t in raw]
