"""6DOT50: the Pay API adapter and the leg driver."""
