"""The stream processor: events in, ClickHouse rows out (the read models query_svc serves)."""
