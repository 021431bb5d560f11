"""Domain services: the rules of the product, one module per domain."""
