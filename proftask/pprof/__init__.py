"""pprof profiles: decompress, decode, validate, fold into stacks. Pure (no Kafka, HTTP, ClickHouse).

Semantics follow `go tool pprof`: each Line of a Location is a frame (inlined frames expanded,
caller first); a Location without lines is its address `0x%x`; invalid UTF-8 becomes U+FFFD.
"""
