"""The domain core: pure functions and values, no Kafka, HTTP or ClickHouse inside."""
