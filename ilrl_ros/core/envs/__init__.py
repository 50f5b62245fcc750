"""Simulated robots and MDPs for the learning core: corridor robot, pendulum, gridworld."""
