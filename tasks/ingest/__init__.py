"""The ingest stage: sources to a Zarr frame store, one video per unit of work on Dask."""
