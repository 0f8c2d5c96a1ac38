"""Shipped profiles of the papers' model zoo (with leakage attached) and the command that builds them."""
