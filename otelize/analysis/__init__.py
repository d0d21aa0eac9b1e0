"""Per-file analysis: parse (tree-sitter), facts, and the cross-file graph."""
