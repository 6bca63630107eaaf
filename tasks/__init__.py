"""Celery tasks: thin entry points that parse, call one use case and translate the outcome."""
