"""What an agent's profile upload goes through, whatever transport carried it (HTTP, gRPC)."""
