"""Knowledge's settings (where the lessons live, which embedder, when two lessons are one) live
with the other settings in ``sorte.config``; this name stays for knowledge's own modules."""

from sorte.config import MINILM_MODEL, OLLAMA_EMBED_MODEL, KnowledgeSettings

__all__ = ["MINILM_MODEL", "OLLAMA_EMBED_MODEL", "KnowledgeSettings"]
