"""Small helpers every room uses (torch_utils-like): EMA, schedules, run folders, atomic IO, devices."""
