"""The two kinds of failure every service distinguishes.

Transient errors (a 429, a 5xx, a timeout, a dropped connection) are retried with backoff, boundedly.
Permanent errors (bad input, an answer that is not valid JSON after re-asking, unsafe SQL, context overflow)
go straight to the dead-letter topic with their reason: retrying them would only burn time and tokens.
"""


class TransientError(Exception):
    pass


class PermanentError(Exception):
    pass
