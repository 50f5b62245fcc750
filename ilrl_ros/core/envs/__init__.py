"""Simulated robots for the learning core: the corridor-following robot and the pendulum."""
