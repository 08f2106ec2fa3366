"""Helpers for end-to-end tests that run a real Airflow deployment on this machine."""
