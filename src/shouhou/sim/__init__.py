"""Virtual time: scenario files and the simulator."""
