"""Local model servers for the AI node tests: OpenAI- and Anthropic-compatible, scripted.

Each speaks its provider's wire protocol as documented, so the official SDKs talk to it
unmodified: ``openai_app`` (``POST /v1/chat/completions``, JSON or SSE chunks with tool-call
deltas and a usage chunk, OpenAI error bodies), ``anthropic_app`` (``POST /v1/messages``, JSON
or the named SSE events, Anthropic error bodies). What a model answers is scripted by its name
(script.py); ``ModelServer`` (server.py) runs both apps on one uvicorn in a thread.
"""
