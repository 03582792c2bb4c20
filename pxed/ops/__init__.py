"""What the operator sees: the log observers, per-host timelines, metrics and the status page."""
