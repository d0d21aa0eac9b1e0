"""The app on disk: discovery, package.json/tsconfig, settings."""
