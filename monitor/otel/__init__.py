"""OpenTelemetry input: OTLP requests as the Collector exports them -> aifm events (docs/otel.md).

``otlp`` parses requests with the official message classes, ``mapping`` turns one span
into one event for each major GenAI instrumentation, ``decoder`` holds the bounded
state that joins agent ancestry and log-record content, ``encode`` writes events as
spans for the demo.
"""
