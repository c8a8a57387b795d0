"""Sources → documents → chunks, and the pipeline that writes them into the index."""
