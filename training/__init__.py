"""Ablation training: tokenize curated subsets, train small LMs, evaluate and compare them."""
