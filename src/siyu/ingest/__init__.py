"""Getting data in: files (CSV, Excel, JSONL), the batch API and signed webhooks, through one path."""
