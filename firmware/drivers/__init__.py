# Device drivers. Each takes its pins, buses and clock as objects (never pin numbers), so the
# simulator can hand it fakes; only board.py binds real hardware.
