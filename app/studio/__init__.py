"""Pathway studio: coordinators edit, check, test-run, publish and roll back pathways."""
