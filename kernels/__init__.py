"""Triton kernels, one folder per op with a plain-PyTorch `naive.py` reference."""
