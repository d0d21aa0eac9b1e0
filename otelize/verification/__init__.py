"""`otelize verify`: the OTLP receiver, span trees, semantic conventions."""
