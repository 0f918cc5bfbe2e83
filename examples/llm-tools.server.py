"""A scripted OpenAI-compatible model server for the llm and agent examples (the test suite's own).

    python examples/llm-tools.server.py --port 8766

Serves ``POST /openai/v1/chat/completions`` (and Anthropic's ``/anthropic/v1/messages``) on
127.0.0.1 and prints the OpenAI base URL first. Its model calls the first tool it is given,
answers "The answer is <tool result>" once the result is in the conversation, replies JSON
when asked for JSON, and otherwise echoes. Point the examples at a real server instead (Ollama:
``http://localhost:11434/v1``) by passing that as the input's ``base_url``.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

# The server lives in the repository's test package (tests/llm_servers).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.llm_servers.server import ModelServer  # after the path is set

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    server = ModelServer(port=port)
    server.start()
    print(server.openai_url, flush=True)
    threading.Event().wait()
