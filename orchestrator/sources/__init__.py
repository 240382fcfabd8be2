"""Sources of input objects: a CSV file, a bucket listing or a COS inventory report."""
