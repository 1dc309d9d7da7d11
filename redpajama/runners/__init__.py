"""Engines that schedule stage tasks. They decide sharding and scheduling, never stage logic."""
