"""ilrl_ros: imitation and reinforcement learning in a real ROS 2 control loop."""

__version__ = '0.1.0'
