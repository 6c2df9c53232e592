"""ingest_svc: what agents send back: errors now, profiles with the ingest issue."""
