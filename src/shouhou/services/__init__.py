"""Use cases: each loads, decides, saves, schedules deadlines and commits once."""
