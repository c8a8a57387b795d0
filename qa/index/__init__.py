"""The index: embedders, the Chroma store, the keyword index, the sentence-vector cache."""
