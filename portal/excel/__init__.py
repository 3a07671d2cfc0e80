"""Excel uploads: the one safe way to read a workbook a person uploaded (safe_read)."""
