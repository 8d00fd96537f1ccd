"""What runs the control plane: startup, scheduler ticks, workers, job outcomes, metrics."""
