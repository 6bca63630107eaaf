"""Development tooling: the embedded Redis and the local stack for demo, up and the tests.

Never used in production: there, Redis, the ledger and the processes are the operator's.
"""
