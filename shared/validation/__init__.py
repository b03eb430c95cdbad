"""The validator's own code: deterministic checks, the rubric judge and the acceptance policy.

The validator stage, `turnforge validate` (re-validating a written dataset offline) and any evaluation harness
decide acceptance with this very code, so a record means the same thing wherever it is checked.
"""
