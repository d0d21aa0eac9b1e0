"""The worker registry and the task DAG."""
