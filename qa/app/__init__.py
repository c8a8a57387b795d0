"""The faces: CLI, HTTP API, Gradio UI (the only place gradio is imported)."""
