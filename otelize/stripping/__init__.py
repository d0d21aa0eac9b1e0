"""`otelize strip`: the inverse of instrument."""
