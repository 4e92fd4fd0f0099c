"""What the web app and the workers share about Redis: keys, the job record, enqueue, reads, events."""
