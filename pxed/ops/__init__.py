"""What the operator sees: the log observer and its guards, and the subscribers to the
daemon's event bus (per-host timelines, metrics, the status page)."""
