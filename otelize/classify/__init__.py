"""Classification: YAML rules compiled to matchers, the classifier, rule tests."""
