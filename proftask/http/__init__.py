"""HTTP plumbing shared by the services: errors, JSON bodies, health, readiness, metrics."""
