"""The connector job queue: enqueue, lease, report."""
