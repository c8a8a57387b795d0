"""Retrieval → answer → verification: the chain the CLI, UI, API and eval all call."""
