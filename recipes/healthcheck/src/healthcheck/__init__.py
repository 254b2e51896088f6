"""HTTP health checks."""
