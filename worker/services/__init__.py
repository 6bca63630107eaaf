"""The use cases: submit a job, cancel a leg, reconcile, sweep. Written against ports."""
