"""The seven workers. Each turns one planned task into a WorkerResult (pure data)."""
