"""The E2E suite: a real Airflow deployment on this machine and the checks run against it (see run.py)."""
