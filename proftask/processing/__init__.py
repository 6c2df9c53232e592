"""Message processing: events in, ClickHouse rows out. The pure processors (rows from a
record), the row writer and the chunk reader, shared by the processor service and `proftask replay`."""
