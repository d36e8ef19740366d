"""A fake OpenAI-compatible chat-completions server on loopback for the OpenTelemetry tests: refusals (BOMB), 429s (RATE), tool calls (TOOL)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _completion(body, content, finish="stop", tool_calls=None):
    msg = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
        msg["content"] = None
    return {
        "id": f"chatcmpl-{int(time.time() * 1e6)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini") + "-2024-07-18",
        "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if tool_calls else finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(n) or b"{}")
        messages = body.get("messages") or []
        if messages and messages[-1].get("role") == "tool":  # the tool's result came back: answer in words
            data = json.dumps(_completion(body, "It is 18 degrees in Paris.")).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        text = json.dumps(messages or body.get("input", ""))
        if "RATE" in text:
            self.send_response(429)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"error": {"message": "Rate limit", "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"}}).encode())
            return
        if "TOOL" in text:
            out = _completion(
                body, None, tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
            )
        elif "BOMB" in text:
            out = _completion(body, "I'm sorry, but I can't help with that request.")
        else:
            out = _completion(body, "Paris is the capital of France.")
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
