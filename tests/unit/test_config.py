from proftask.config import load_settings


def test_defaults_are_the_seeds():
    s = load_settings(env={})
    assert s.pprof_max_size == 31457280 and s.memory_parser_enabled is True
    assert s.http_port == 8080 and s.grpc_port == 11800
    assert s.clickhouse_dsn.startswith("chdb://") and s.clickhouse_dsn.endswith("/clickhouse")


def test_env_overrides_with_types():
    s = load_settings(env={"SW_RECEIVER_PPROF_MAX_SIZE": "1024", "SW_RECEIVER_PPROF_MEMORY_PARSER_ENABLED": "false",
                           "PROFTASK_HTTP_PORT": "9999", "PROFTASK_CLICKHOUSE_DSN": "http://ch:8123"})
    assert (s.pprof_max_size, s.memory_parser_enabled, s.http_port) == (1024, False, 9999)
    assert s.clickhouse_dsn == "http://ch:8123"
