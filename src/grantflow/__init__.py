"""Grantflow: self-hostable just-in-time access for AWS Organizations."""

__version__ = "0.1.0"
