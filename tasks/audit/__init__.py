"""The audit stage: lineage trees back to source hashes; re-hashing against the records."""
