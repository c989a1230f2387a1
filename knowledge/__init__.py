"""Lessons in Chroma, embeddings, recall; built by the agent issue."""
