"""The stream worker: the pipeline driven by Kafka (faust-streaming), with metrics and state."""
