"""Provider drivers: the business decisions around each provider's operations."""
