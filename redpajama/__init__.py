"""redpajama: turn raw web crawls into curated LLM pretraining data, the RedPajama-V2 way.

Python entry points live with their stages, e.g. `redpajama.pipelines.ingest.run`.
"""

__version__ = "0.1.0"
