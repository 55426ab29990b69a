"""What is made of decoded goroutines: filters, groups, leak buckets."""
