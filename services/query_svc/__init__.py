"""query_svc: progress (and, with the analysis issue, flame graphs) read from ClickHouse."""
