"""Shipped search spaces and training configs; installed as ``focusformer.configs``."""
