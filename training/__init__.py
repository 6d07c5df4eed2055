"""Training: data, architectures, objectives, checkpoints, metrics and the trainer."""
