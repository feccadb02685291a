"""The validation stage: Great Expectations suites on a store's catalog and sampled frames; the stamp."""
