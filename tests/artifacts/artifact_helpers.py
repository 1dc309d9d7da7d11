"""Corpora and a tiny artifacts config shared by the artifact tests."""

from __future__ import annotations

HTML = "trafilatura-eval-html-multilingual/html"
TRAIN_PAGES = [
    "blog.python.org.html",
    "blog.wordpress.com.diverse.html",
    "boingboing.net.millenials.html",
    "caktusgroup.com.django.html",
    "creativecommons.org.html",
    "denkanstoos.com.2012.html",
]
HELDOUT_PAGES = ["dw.com.colonial.html", "github.blog.spiceland.html", "gregoryszorc.com.python3.html"]
PAGES = TRAIN_PAGES + HELDOUT_PAGES


def web_source(pages: list[str]) -> dict:
    return {
        "paths": [f"{HTML}/{p}" for p in pages],
        "format": "html",
        "unit": "line",
        "group": 3,
        "min_chars": 100,
    }


def tiny_config_dict() -> dict:
    return {
        "name": "tiny",
        "version": "0.0.1",
        "lid": "lid-fasttext-lid176-ftz/lid.176.ftz",
        "dsir_num_samples": 300,
        "languages": {
            "en": {
                "datasets": {
                    "wikipedia": {
                        "paths": ["lm-wikitext-2-valid-test/valid.txt"],
                        "format": "wikitext",
                        "min_chars": 200,
                    },
                    "ccnet": web_source(TRAIN_PAGES),
                },
                "classifiers": [
                    {
                        "name": "palm",
                        "label": "__label__palm",
                        "positives": ["wikipedia"],
                        "num_samples": 300,
                        # ~100 docs a side: the default 5 epochs underfit (AUC ~0.85); RPv2 had 75k.
                        "fasttext": {"epoch": 25, "thread": 1},
                    }
                ],
                "dsir": ["wikipedia", "ccnet"],
                "lm": {
                    "dataset": "wikipedia",
                    "vocab_size": 2000,
                    "max_docs": 600,
                    "prune": [1, 1, 2, 2, 2],
                    "estimator": "python",
                    "heldout_docs": 50,
                },
                "cutoff_sample": "ccnet",
            }
        },
    }
