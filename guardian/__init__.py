"""Validation gates (tests, security, benchmark) and their rules; built by the guardian issue."""
