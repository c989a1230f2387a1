"""Sandbox runners (Docker first, a local fallback); built by the guardian issue."""
