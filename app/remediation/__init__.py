"""Remediation agent: acts on Grafana's signed webhook for a short allow-list
of fixes on this web host (restart the app, free disk space), and refuses and
records everything else. See README.md beside this file."""
