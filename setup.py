"""Package layout: the four top-level folders install as subpackages of `redpajama`.

`pipelines/`, `quality_signals/`, `training/`, `kernels/` become `redpajama.pipelines`, ... so the
project has one import namespace and never shadows other distributions (HF ships a top-level
`kernels`). The package list is derived from the folders, never written by hand.
"""

from setuptools import Extension, find_packages, setup

SUBPACKAGE_FOLDERS = ("pipelines", "quality_signals", "training", "kernels")

packages = ["redpajama", *(f"redpajama.{name}" for name in find_packages("redpajama"))]
package_dir = {"redpajama": "redpajama"}
for folder in SUBPACKAGE_FOLDERS:
    package_dir[f"redpajama.{folder}"] = folder
    packages += [f"redpajama.{folder}", *(f"redpajama.{folder}.{name}" for name in find_packages(folder))]

# Optional C helpers: a machine without a compiler still installs, and the code falls back to the
# pure-Python path (which the tests keep as the oracle).
native = [
    Extension(
        "redpajama._native.sha1_32", ["redpajama/_native/sha1_32.c"], libraries=["crypto"], optional=True
    )
]

setup(
    packages=packages,
    package_dir=package_dir,
    ext_modules=native,
    package_data={
        "": ["*.yaml", "*.json", "*.txt"],
        # The shipped default artifact bundle (models, counts, manifest; see its SOURCE.md).
        "redpajama.artifacts": [
            f"default/{pattern}"
            for pattern in (
                "*.json",
                "*.csv",
                "*.md",
                "**/*.ftz",
                "**/*.bin",
                "**/*.arpa",
                "**/*.model",
                "**/*.npy",
            )
        ]
        # GPT-2's BPE files (see tokenizers/gpt2/SOURCE.md for origin and licence).
        + ["tokenizers/gpt2/*.json", "tokenizers/gpt2/*.bpe", "tokenizers/gpt2/*.md"],
    },
)
