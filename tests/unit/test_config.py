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


def test_http_slow_client_limits_from_env():
    import pytest

    from proftask.config import HttpLimits
    assert load_settings(env={}).http_limits == HttpLimits(20.0, 60.0, 75.0, 10_000)
    s = load_settings(env={"PROFTASK_HTTP_HEADER_TIMEOUT": "1.5", "PROFTASK_HTTP_BODY_IDLE_TIMEOUT": "2",
                           "PROFTASK_HTTP_KEEPALIVE_TIMEOUT": "30", "PROFTASK_HTTP_MAX_CONNECTIONS": "50"})
    assert s.http_limits == HttpLimits(1.5, 2.0, 30.0, 50)
    with pytest.raises(ValueError, match="maxConnections"):
        load_settings(env={"PROFTASK_HTTP_MAX_CONNECTIONS": "0"})


def test_grpc_tenant_listeners_need_a_tenant_that_has_tokens():
    import pytest
    s = load_settings(env={"PROFTASK_TOKENS": "a=acme:agent,b=beta:user",
                           "PROFTASK_GRPC_TENANT_LISTENERS": "acme=127.0.0.1:11801, beta=0.0.0.0:11802"})
    assert s.grpc_tenant_listeners == (("acme", "127.0.0.1", 11801), ("beta", "0.0.0.0", 11802))
    assert load_settings(env={}).grpc_tenant_listeners == ()
    with pytest.raises(ValueError, match="no token"):
        load_settings(env={"PROFTASK_GRPC_TENANT_LISTENERS": "acme=127.0.0.1:11801"})
    with pytest.raises(ValueError, match="tenant=host:port"):
        load_settings(env={"PROFTASK_TOKENS": "a=acme:agent", "PROFTASK_GRPC_TENANT_LISTENERS": "acme=11801"})


def test_a_setting_proftask_cannot_take_is_one_line_naming_its_variable(capsys, monkeypatch):
    import pytest

    from proftask.cli import main
    from proftask.config import ConfigError
    with pytest.raises(ConfigError, match=r"\(PROFTASK_RETENTION_TENANTS\) 'acme=3,bolt=x': expected tenant=days"):
        load_settings(env={"PROFTASK_RETENTION_TENANTS": "acme=3,bolt=x"})
    with pytest.raises(ConfigError, match=r"\(PROFTASK_RETENTION_DAYS\) -3: expected a whole number"):
        load_settings(env={"PROFTASK_RETENTION_DAYS": "-3"})
    with pytest.raises(ConfigError, match="proftask.yaml: ValueError: invalid literal"):
        load_settings(env={"PROFTASK_HTTP_PORT": "eighty"})
    monkeypatch.setenv("PROFTASK_RETENTION_TENANTS", "bolt=x")
    for command in (["serve", "all"], ["replay"], ["migrate"], ["kafka", "wait"]):  # was a 23-line traceback
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("proftask: proftask.retention.tenants"), err
