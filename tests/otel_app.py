"""An application instrumented the standard way, for the OpenTelemetry tests: run as a script, one library per process.

The real openai SDK calls a fake OpenAI-compatible server on loopback (``fake_openai``)
under one real instrumentation library; an agent framework's spans (``invoke_agent``,
``execute_tool``) are written with the OpenTelemetry SDK by the GenAI conventions. Every
export the SDK makes is encoded with the SDK's own OTLP encoder, exactly the
``ExportTraceServiceRequest`` / ``ExportLogsServiceRequest`` the Collector receives and
its kafka exporter forwards, and written base64, one request per line.

    python tests/otel_app.py LIBRARY OUT_DIR PLAN_JSON
    LIBRARY: openai-v2 (legacy content in log records), openai-v2-latest (content on spans), openinference,
             openai-agents (an openai-agents Agent with a function tool, under OpenInference's agents instrumentation)
    PLAN_JSON: [[prompt, count], ...]; prompts containing BOMB are refused, RATE answered 429, TOOL with a tool call
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_openai
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode


class RequestsToFile(SpanExporter, LogRecordExporter):
    """Each export as the OTLP request the Collector would receive, base64, one per line."""

    def __init__(self, path: Path, encode) -> None:
        self.handle = path.open("w")
        self.encode = encode

    def export(self, batch):
        self.handle.write(base64.b64encode(self.encode(batch).SerializeToString()).decode() + "\n")
        return SpanExportResult.SUCCESS if self.encode is encode_spans else LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self.handle.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def main(library: str, out_dir: Path, plan: list) -> None:
    if library == "openai-v2-latest":
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
    else:
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    import openai  # after the settings: instrumentations read them once

    out_dir.mkdir(parents=True, exist_ok=True)
    resource = Resource.create({"service.name": "travel-app"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(RequestsToFile(out_dir / "spans.b64", encode_spans), max_export_batch_size=64))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(RequestsToFile(out_dir / "logs.b64", encode_logs), max_export_batch_size=64))

    if library == "openai-agents":
        run_agent(tracer_provider, plan)
        tracer_provider.shutdown()
        return
    if library == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    else:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)

    server = fake_openai.start()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="test", max_retries=0)
    tracer = tracer_provider.get_tracer("travel-agent-framework")
    calls = 0
    for prompt, count in plan:
        for _ in range(count):
            with tracer.start_as_current_span("invoke_agent travel", attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "travel"}):
                try:
                    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"{prompt} #{calls}"}])
                except openai.APIError:
                    pass
                attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.arguments": '{"city": "Paris"}'}
                with tracer.start_as_current_span("execute_tool get_weather", attributes=attributes) as span:
                    if "TOOLFAIL" in prompt:
                        span.set_attribute("error.type", "TimeoutError")
                        span.set_status(Status(StatusCode.ERROR, "upstream timed out"))
                    else:
                        span.set_attribute("gen_ai.tool.call.result", '{"temperature": 18}')
            calls += 1
    tracer_provider.shutdown()
    logger_provider.shutdown()
    server.shutdown()
    print(f"{calls} calls")


def run_agent(tracer_provider, plan: list) -> None:
    """The same plan through an openai-agents Agent: its model calls, tool calls and agent runs come from the framework."""
    import agents
    from openai import AsyncOpenAI
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    agents.set_trace_processors([])  # no export to the OpenAI platform: OpenInference turns the framework's traces into OTel spans
    OpenAIAgentsInstrumentor().instrument(tracer_provider=tracer_provider)
    server = fake_openai.start()
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="test", max_retries=0)

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather of a city."""
        return "18 degrees"

    model = agents.OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
    agent = agents.Agent(name="travel", instructions="Help with travel.", model=model, tools=[get_weather])
    for prompt, count in plan:
        for _ in range(count):
            try:
                agents.Runner.run_sync(agent, prompt)
            except Exception:  # a 429 ends the run with an error, as in production
                pass
    server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]))
