"""The domain: states, the producer message, money and reconciliation. No I/O here."""
