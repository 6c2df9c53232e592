"""SkyWalking's agent protocol (skywalking.v10.PprofTask over gRPC)."""
