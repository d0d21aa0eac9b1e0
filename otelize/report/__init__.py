"""Reports: instrument summary/JSON/Markdown, plan and graph."""
