"""Stream a model's answer live, record it, and never pay for a finished answer twice.

A generator step wraps the official ``openai`` client's streamed chat
completion: each token reaches the workflow (printed here as it comes) and
any reader (``durable read_stream``) at once, and the whole answer is
recorded when the stream ends. Kill the process after that and run it
again: the answer is replayed from the store, no second request is made.
Kill it mid-stream: the next run asks again from the start, and readers see
the restart marked.

Run it against any OpenAI-compatible server::

    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=...
    python examples/stream_chat.py "why is the sky blue?"

What pickles: the chunks' text (str), and the client's pydantic response
models (``ChatCompletionChunk``, ``ChatCompletion``) if you yield those; a
live ``Stream`` (an open HTTP response) does not, so yield what it carries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from openai import OpenAI

import durable

MODEL = os.environ.get("CHAT_MODEL", "gpt-4o-mini")


@durable.step(stream="answer")
def ask(question: str) -> Iterator[str]:
    """The model's answer, token by token, as the server sends it."""
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "not-needed-locally"))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


@durable.step
def save(question: str, answer: str) -> int:
    """Keep the answer (here: count its words)."""
    return len(answer.split())


@durable.durable_workflow(name="examples.chat")
def chat(question: str) -> str:
    tokens = []
    for token in ask(question):
        print(token, end="", flush=True)
        tokens.append(token)
    print()
    answer = "".join(tokens)
    save(question, answer)
    return answer


if __name__ == "__main__":
    question = sys.argv[1] if len(sys.argv) > 1 else "why is the sky blue?"
    chat.run_sync(question, workflow_id=f"chat:{question}")
