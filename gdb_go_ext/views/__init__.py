"""Shared views: rich tables and grids for people, one JSON schema for scripts."""
