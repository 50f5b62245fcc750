"""The learning core: task specs, simulators, experts, data, policies, algorithms.

Nothing under ``ilrl_ros.core`` imports ROS; it is plain Python, NumPy and PyTorch.
"""
