"""Grafana's webhook signature, and the checks on it.

What Grafana sends (grafana/alerting http/hmac.go, HMACRoundTripper.sign):
when hmacConfig.timestampHeader is set, the header carries the Unix time in
whole seconds (strconv.FormatInt(now.Unix(), 10)) and the signature is the
lowercase hex (hex.EncodeToString) of HMAC-SHA256(secret, timestamp + ":" +
body), in the header named by hmacConfig.header. Without a header name Grafana
uses "X-Grafana-Alert-Signature", so the contact point always names it.
"""
import hashlib
import hmac
import re

_DECIMAL = re.compile(r"-?[0-9]{1,12}")


class Refusal(Exception):
    """The request is refused as a whole; nothing was changed."""

    def __init__(self, status, reason, **fields):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.fields = fields


def sign(secret, timestamp, body):
    """hex(HMAC-SHA256(secret, "<timestamp>:" + body)), as Grafana computes it."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    mac.update(str(timestamp).encode("ascii"))
    mac.update(b":")
    mac.update(body)
    return mac.hexdigest()


def verify(secret, signature, timestamp, body, now, max_skew_s):
    """Return the accepted (signature, timestamp); raise Refusal (401) otherwise.

    The signature is checked before the clock so that an unsigned caller
    learns nothing about the agent's time window."""
    if not signature:
        raise Refusal(401, "missing signature")
    if not timestamp:
        raise Refusal(401, "missing timestamp")
    if not _DECIMAL.fullmatch(timestamp):
        raise Refusal(401, "malformed timestamp")
    expected = sign(secret, timestamp, body)
    # Constant time; encode first so a non-ASCII header cannot raise.
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise Refusal(401, "bad signature")
    ts = int(timestamp)
    if now - ts > max_skew_s:
        raise Refusal(401, "stale", timestamp=ts, skew_s=int(now - ts))
    if ts - now > max_skew_s:
        raise Refusal(401, "future", timestamp=ts, skew_s=int(now - ts))
    return signature, ts
