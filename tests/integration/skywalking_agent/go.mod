module proftask.dev/skywalking-agent-demo

go 1.24

require github.com/apache/skywalking-go v0.7.0
