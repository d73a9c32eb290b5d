# The connection page's environment forms. tests/docs/test_snippets.py reads every export below and
# checks that the hook resolves it (the <token> placeholder replaced).
# [START connection_env_json]
export AIRFLOW_CONN_SPP_DEFAULT='{"conn_type": "spp", "host": "https://acme.wayfront.com", "password": "<token>", "extra": {"api_version": "2024-03-05", "timeout": 20}}'
# [END connection_env_json]
# [START connection_env_uri]
export AIRFLOW_CONN_SPP_DEFAULT='spp://:<token>@acme.wayfront.com?api_version=2024-03-05&timeout=20'
# [END connection_env_uri]
# [START connection_env_sandbox]
export AIRFLOW_CONN_SPP_DEFAULT='spp://:<sandbox-token>@http%3A%2F%2F127.0.0.1%3A8765'
# [END connection_env_sandbox]
