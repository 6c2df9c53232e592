"""Prometheus metrics shared by every service in a process (served on /metrics)."""
from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("proftask_http_requests_total", "HTTP requests", ["route", "status"])
EVENTS_PRODUCED = Counter("proftask_events_produced_total", "Events produced to Kafka", ["type"])
EVENTS_CONSUMED = Counter("proftask_events_consumed_total", "Events consumed from Kafka",
                          ["consumer", "type"])
CONSUMER_LAG = Gauge("proftask_consumer_lag", "Records behind the end of the topic", ["consumer"])
INGEST_BYTES = Counter("proftask_ingest_bytes_total", "Profile bytes accepted")
UPLOAD_BYTES_IN_FLIGHT = Gauge("proftask_upload_bytes_in_flight", "Upload bytes charged to the upload budget")
UPLOADS_REFUSED_BUSY = Counter("proftask_uploads_refused_busy_total",
                               "Uploads refused because the upload budget was full")
ROWS_WRITTEN = Counter("proftask_clickhouse_rows_written_total", "Rows written to ClickHouse", ["table"])
QUERY_SECONDS = Histogram("proftask_query_seconds", "ClickHouse query latency", ["query"])
HTTP_SECONDS = Histogram("proftask_http_request_seconds", "HTTP request latency", ["route"])
INGEST_ROWS = Counter("proftask_ingest_sample_rows_total", "Sample rows written for stored profiles")
ANALYSIS_CACHE = Counter("proftask_analysis_cache_total", "Analysis cache lookups", ["result"])
DEAD_LETTERS = Counter("proftask_dead_letters_total", "Records a consumer could not use and skipped",
                       ["consumer", "topic", "reason_kind"])
CONSUMER_FAILURES = Counter("proftask_consumer_failures_total",
                            "Times a consumer's loop failed and was restarted", ["consumer"])
# Where ingest time goes, per profile: intake_receive (the body read), intake_validate (gunzip,
# decode, validate in the CPU pool), intake_produce (on Kafka, acknowledged), processor_queued (from
# the upload event's creation to the processor taking it: Kafka and the queue), processor_rows
# (decode and fold in the CPU pool), processor_write (ClickHouse), processor_stored (the
# ProfileStored event sent). Stages of concurrent profiles overlap: the sums are busy time.
INGEST_STAGE_SECONDS = Histogram("proftask_ingest_stage_seconds", "Seconds a profile spent in each ingest stage",
                                 ["stage"], buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60))
# Each task's merged tree (proftask/processing/task_folds.py): profiles added to the sums in
# memory, rows written, sums summed again from ClickHouse (a restart, a replaced profile), rows
# left to the task's next profile in progress, and the seconds spent on it per batch.
TASK_FOLDS = Counter("proftask_task_folds_total", "Task merged trees: what the processor did", ["outcome"])
TASK_FOLD_SECONDS = Counter("proftask_task_fold_seconds_total", "Seconds the processor spent on task merged trees")
