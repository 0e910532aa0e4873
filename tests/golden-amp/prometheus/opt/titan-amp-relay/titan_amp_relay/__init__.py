# golden: root:root 0644
"""titan-amp-relay: signs Prometheus' remote writes for Amazon Managed Service for Prometheus.

Debian 12's prometheus 2.42 ignores remote_write's ``sigv4`` block (its 91-Disable_opentelemetry
patch drops the line of storage/remote/client.go NewWriteClient that installed the signing round
tripper; prometheus/prometheus#13030), so AMP would refuse every write with 403. Prometheus
writes to this relay on 127.0.0.1 instead, and the relay forwards each write to the workspace
signed with SigV4 (service ``aps``) by botocore, with the instance profile's credentials from
IMDSv2. Only Debian 12 packages: python3 and python3-botocore.
"""
