"""The audit trail: writing events, sinks, checkpoints, verification, queries, reports."""
