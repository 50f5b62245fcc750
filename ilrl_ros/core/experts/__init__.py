"""Privileged experts that demonstrate each task: they see the true state the learner does not."""
