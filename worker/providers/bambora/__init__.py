"""Bambora (Worldline): the payments API adapter and the leg driver."""
