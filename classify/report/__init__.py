"""What a run leaves behind: report.txt (text), confusion.png (confusion), the HTML
pages (html), metrics.json and the bundle's metadata (records), results.csv (ledger)."""
