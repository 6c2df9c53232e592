"""The `proftask` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from proftask.client import analyze_command, task_commands
from proftask.client.http import DEFAULT_SERVER, ApiClient, ClientError
from proftask.client.terminal import printable
from proftask.config import ConfigError, load_settings
from proftask.errors import CannotRun


def _setup_logging(level: str) -> None:
    from proftask.log_limits import RepeatLimit

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatLimit())
    for noisy in ("faust", "mode", "aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings(args):
    env = dict(os.environ)
    overrides = {"http_port": "PROFTASK_HTTP_PORT", "kafka": "PROFTASK_KAFKA_BOOTSTRAP",
                 "clickhouse_dsn": "PROFTASK_CLICKHOUSE_DSN", "data_dir": "PROFTASK_DATA_DIR"}
    for attr, var in overrides.items():
        value = getattr(args, attr, None)
        if value is not None:
            env[var] = str(value)
    return load_settings(args.config, env)


def _role(value: str) -> str:
    from proftask.runtime import role_parts

    try:
        role_parts(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def cmd_serve(args) -> int:
    from proftask.clickhouse.client import require_free
    from proftask.runtime import role_parts, serve

    settings = _settings(args)
    if {"query", "processor"} & set(role_parts(args.role)):
        require_free(settings.clickhouse_dsn)  # at once: serve opens ClickHouse only once Kafka answers
    asyncio.run(serve(args.role, settings))
    return 0


def cmd_kafka_wait(args) -> int:
    from proftask.kafka.readiness import wait_for_broker

    settings = _settings(args)
    try:
        asyncio.run(wait_for_broker(settings.kafka_bootstrap, args.timeout, every_broker=True))
    except TimeoutError as e:
        print(f"proftask: {e}", file=sys.stderr)
        return 1
    print(f"Kafka at {settings.kafka_bootstrap} is ready")
    return 0


def cmd_kafka_topics(args) -> int:
    from proftask.kafka.topics import Topics, ensure_topics

    s = _settings(args)
    topics = Topics.with_prefix(s.topic_prefix)
    asyncio.run(ensure_topics(s.kafka_bootstrap, topics.specs(s.partitions), s.replication_factor))
    for spec in topics.specs(s.partitions):
        print(spec.name)
    return 0


def cmd_migrate(args) -> int:
    from proftask.clickhouse.client import ClickHouse
    from proftask.clickhouse.cluster_ddl import migration_ddl
    from proftask.clickhouse.migrate import migrate

    settings = _settings(args)
    cluster = args.cluster or settings.clickhouse_cluster or None
    if args.print_ddl:
        for version, name, statements in migration_ddl(cluster):
            print(f"-- {version:04d}_{name}")
            for statement in statements:
                print(statement + ";")
        return 0

    async def run():
        ch = ClickHouse(settings.clickhouse_dsn)
        await ch.open()
        try:
            return await migrate(ch, cluster)
        finally:
            await ch.close()

    applied = asyncio.run(run())
    print("applied: " + (", ".join(f"{v:04d}" for v in applied) or "nothing (up to date)"))
    return 0


def cmd_replay(args) -> int:
    from proftask.kafka.readiness import BrokerUnavailable
    from proftask.replay import replay

    try:
        asyncio.run(replay(_settings(args), broker_timeout_s=args.kafka_timeout))
    except BrokerUnavailable as e:
        print(f"proftask replay: {e}; start the broker first (`make replay` does)", file=sys.stderr)
        return 1
    return 0


CLIENT_ERROR = 3  # `task wait` uses 1 and 2 for failed and timed out


def client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=os.environ.get("PROFTASK_SERVER", DEFAULT_SERVER),
                   help=f"proftask's HTTP address ($PROFTASK_SERVER, default {DEFAULT_SERVER})")
    p.add_argument("--token", default=os.environ.get("PROFTASK_TOKEN"),
                   help="API token, sent as 'Authorization: Bearer' ($PROFTASK_TOKEN; none when auth is off)")


def run_client_command(args) -> int:
    try:
        return args.client_func(ApiClient(args.server, args.token), args)
    except ClientError as e:
        print(f"proftask: {printable(e)}", file=sys.stderr)
        return CLIENT_ERROR
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proftask", description="On-demand pprof profiling for Go services: "
                                     "run the services (up, serve, kafka, migrate, replay) or use a running "
                                     "proftask (task, analyze). `proftask COMMAND --help` explains each.")
    parser.add_argument("--config", help="config file (default: $PROFTASK_CONFIG or config/proftask.yaml)")
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--kafka", help="Kafka bootstrap servers (PROFTASK_KAFKA_BOOTSTRAP)")
        p.add_argument("--data-dir", help="data directory (PROFTASK_DATA_DIR)")
        p.add_argument("--clickhouse-dsn", help="chdb:///dir or http://host:8123 (PROFTASK_CLICKHOUSE_DSN)")

    serve = sub.add_parser("serve", help="run proftask services",
                           description="Run task_svc, ingest_svc, query_svc, the processor and the "
                                       "SkyWalking agent gRPC endpoint in one process (all), or one of them.")
    serve.add_argument("role", type=_role, help="all, task, ingest, query, processor or grpc; several joined by "
                       "commas run in one process (processor,query shares embedded ClickHouse)")
    serve.add_argument("--http-port", type=int, help="HTTP port (PROFTASK_HTTP_PORT, default 8080)")
    common(serve)
    serve.set_defaults(func=cmd_serve)
    # DESIGN's `up`/`serve`: `up` is the standalone process, what `make up` starts beside Kafka
    up = sub.add_parser("up", help="run every service in one process (serve all)",
                        description="Run proftask standalone: every service in this one process, as "
                                    "`proftask serve all`. (`make up` also starts Kafka and a demo service.)")
    up.add_argument("--http-port", type=int, help="HTTP port (PROFTASK_HTTP_PORT, default 8080)")
    common(up)
    up.set_defaults(func=cmd_serve, role="all")

    kafka = sub.add_parser("kafka", help="Kafka utilities").add_subparsers(dest="kafka_command", required=True)
    wait = kafka.add_parser("wait", help="wait until every listed broker is up and in the cluster's metadata")
    wait.add_argument("--timeout", type=float, default=90)
    common(wait)
    wait.set_defaults(func=cmd_kafka_wait)
    topics = kafka.add_parser("topics", help="create proftask's topics if missing and list them")
    common(topics)
    topics.set_defaults(func=cmd_kafka_topics)

    mig = sub.add_parser("migrate", help="apply pending ClickHouse migrations, or print their DDL",
                         description="Apply the pending ClickHouse migrations to the configured DSN, or with "
                                     "--print-ddl print every migration's statements (with --cluster NAME: "
                                     "ReplicatedMergeTree tables `<t>_local` and Distributed tables `<t>` "
                                     "ON CLUSTER NAME, for a ClickHouse server cluster).")
    mig.add_argument("--print-ddl", action="store_true", help="print the DDL instead of applying it")
    mig.add_argument("--cluster", help="the ClickHouse cluster name (remote_servers; $PROFTASK_CLICKHOUSE_CLUSTER)")
    common(mig)
    mig.set_defaults(func=cmd_migrate)

    rep = sub.add_parser("replay", help="rebuild every ClickHouse table from the Kafka topics",
                         description="Drop the ClickHouse read models, re-create them and re-consume the "
                                     "topics' whole history. With embedded ClickHouse, stop the proftask "
                                     "process that owns the data directory first. `make replay` starts "
                                     "the standalone broker if it is stopped and runs this.")
    rep.add_argument("--kafka-timeout", type=float, default=10,
                     help="seconds to wait for the broker before giving up (default 10)")
    common(rep)
    rep.set_defaults(func=cmd_replay)

    task_commands.register(sub, client_options)
    analyze_command.register(sub, client_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "client_func", None):
        return run_client_command(args)
    _setup_logging(args.log_level)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"proftask: {e}", file=sys.stderr)
        return 2
    except CannotRun as e:
        print(f"proftask {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
