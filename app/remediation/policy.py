"""What the agent remembers across requests and restarts, and the limits it applies.

One JSON file in the state directory ($STATE_DIRECTORY, systemd's
StateDirectory=titan-remediation), replaced atomically on every change:
- seen: accepted signatures and their timestamps, kept while a request with
  that timestamp could still pass the skew check (so a restart of the agent
  does not reopen a replay window);
- handled: per mode, the (fingerprint, startsAt) of alerts already acted on;
- actions: per mode and action, the times actions ran (the sliding window of
  the rate limit).
Dry-run keeps its own `handled` and `actions`, so it reports what `on` would
do and switching to `on` later is not blocked by what dry-run only pretended.
"""
import json
import os
import tempfile

from remediation import config as C
from remediation.signature import Refusal

VERSION = 1


class TokenBucket:
    """Global flood guard: `burst` requests at once, then `per_s` a second."""

    def __init__(self, burst, per_s, monotonic):
        self.capacity = float(burst)
        self.per_s = per_s
        self.tokens = float(burst)
        self.monotonic = monotonic
        self.last = monotonic()

    def take(self):
        now = self.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.per_s)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class State:
    """The persisted memories; callers hold the agent's lock."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, C.STATE_FILE)
        self.seen = {}
        self.handled = {"on": {}, "dry-run": {}}
        self.actions = {"on": {}, "dry-run": {}}
        self._load()

    def _load(self):
        try:
            with open(self.path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # Starting with empty memories would reopen replays and lift limits.
            raise C.ConfigError(f"state file {self.path!r} is unreadable ({exc}); "
                                "expected the JSON this agent writes (move it away to start afresh)") from None
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise C.ConfigError(f"state file {self.path!r}: version {doc.get('version') if isinstance(doc, dict) else doc!r}, "
                                f"expected {VERSION}")
        self.seen = {str(k): int(v) for k, v in doc.get("seen", {}).items()}
        for mode in ("on", "dry-run"):
            self.handled[mode] = {str(k): float(v) for k, v in doc.get("handled", {}).get(mode, {}).items()}
            self.actions[mode] = {str(a): [float(t) for t in ts]
                                  for a, ts in doc.get("actions", {}).get(mode, {}).items()}

    def save(self):
        doc = {"version": VERSION, "seen": self.seen, "handled": self.handled, "actions": self.actions}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".state-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    # Replay memory -------------------------------------------------------
    def remember_signature(self, signature, ts, now, max_skew_s):
        """Refusal(409) for a signature already accepted; else remember it (not saved yet)."""
        # A timestamp older than now - skew fails the skew check by itself, so
        # its signature no longer needs remembering.
        self.seen = {s: t for s, t in self.seen.items() if t >= now - max_skew_s}
        if signature in self.seen:
            raise Refusal(409, "replay", timestamp=ts)
        if len(self.seen) >= C.MAX_SEEN_SIGNATURES:
            # Unreachable while the token bucket holds (burst + refill x 2 x skew
            # is far below the bound); refusing keeps replays impossible.
            raise Refusal(429, "replay memory full")
        self.seen[signature] = ts

    # Idempotency ---------------------------------------------------------
    @staticmethod
    def alert_key(alert):
        return f"{alert.fingerprint}|{alert.starts_at}"

    def was_handled(self, mode, alert):
        return self.alert_key(alert) in self.handled[mode]

    def mark_handled(self, mode, alert, now):
        handled = {k: t for k, t in self.handled[mode].items() if t >= now - C.HANDLED_TTL_S}
        if len(handled) >= C.MAX_HANDLED_ALERTS:
            # Forget the oldest: a re-delivery of a week-old alert is still rate limited.
            for key in sorted(handled, key=handled.get)[:len(handled) - C.MAX_HANDLED_ALERTS + 1]:
                del handled[key]
        handled[self.alert_key(alert)] = now
        self.handled[mode] = handled

    # Rate limit ----------------------------------------------------------
    def within_limit(self, mode, action, limit, now):
        count, window = limit
        recent = [t for t in self.actions[mode].get(action, []) if t > now - window]
        self.actions[mode][action] = recent
        return len(recent) < count

    def record_action(self, mode, action, now):
        self.actions[mode].setdefault(action, []).append(now)
