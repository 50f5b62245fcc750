"""The parts of ``bench/loop_latency.py``, the observation-to-command latency benchmark.

``bare`` is the floor, a system under test that imports nothing of ilrl_ros; ``sut`` makes
the checkpoint, the bare floor's plan and the command lines of the systems under test;
``driver`` plays the robot and times them; ``stats`` turns the driver's records into figures;
``report`` prints them. ``bench/soak.py`` borrows the driver's process and CPU helpers.
"""
