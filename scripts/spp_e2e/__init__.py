"""Pieces of scripts/e2e.py: a real Airflow deployment on this machine and the checks run against it."""
