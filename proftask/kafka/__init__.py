"""Kafka adapters: topic layout, the event producer, broker readiness."""
