"""Sentence embeddings for the attack memory (offline, onnxruntime + tokenizers).

The model is the shipped fine-tuned MiniLM encoder cut after its second transformer block (built by
``scripts/build_embedder.py``; ``aimds/data/models/embed/``), whose mean-pooled output keeps attack
families apart where the fine-tuned top layers collapse them. Texts
are read as the pipeline's *folded* view, cut into the encoder's windows (256 tokens, stride 192),
embedded in batches and L2-normalised. Results are cached by the hash of the folded text.
"""

from __future__ import annotations

from aimds.embed.model import DEFAULT_EMBED_DIR, Embedder, Embedding, dequantize, quantize

__all__ = ["DEFAULT_EMBED_DIR", "Embedder", "Embedding", "dequantize", "quantize"]
