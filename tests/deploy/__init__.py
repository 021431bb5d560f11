"""Deployment artefacts: image, compose stack, release script."""
