"""Paywall: the adapter, its codes, the envelope and wire readers, callbacks, the leg driver and
callback recovery."""
