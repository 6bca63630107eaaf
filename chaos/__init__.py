"""``make chaos``: break real processes while jobs are in flight, then count what survived."""
