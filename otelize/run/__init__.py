"""Running the pipeline: per-file work in processes, caches, progress."""
