"""`make up`'s local chat-completions server (`CIO_DEV_LLM=1`, docs/devstack.md "The Strategist's LLM brain"):
the stand-in the Strategist's tests use (deploy/fake_openai.py), run as a process on a fixed port, so the LLM
brain's whole path (prompt, JSON answer, validation, proposal, thought) can be watched without a provider.

Every cycle it answers the same small tightening, which any envelope admits: the global order notional cap down
to `PROPOSED_NOTIONAL_USD`. It prints one line per request (the model asked for, the prompt's size), never the
prompt itself.
"""

import argparse
import signal
import threading

import orjson

from cio_kernel.log_format import configure_logging
from deploy.fake_openai import FakeOpenAI, Step, answer

MODEL = "cio-dev-standin"
PROPOSED_NOTIONAL_USD = 20_000  # the example policy's cap is 25,000


def proposal() -> str:
    change = {"scope": "global", "key": None, "field": "max_order_notional_usd", "value": PROPOSED_NOTIONAL_USD}
    return answer(
        "propose",
        "local chat-completions stand-in (make up, CIO_DEV_LLM=1): a smaller order notional cap while the "
        "demo's book stays concentrated",
        [change],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = FakeOpenAI(port=args.port, default=Step(content=proposal())).start()
    print(f"LLM stand-in: chat completions at {server.base_url}/chat/completions (model {MODEL})", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        while server.requests:  # taken as they come: a long-running stack keeps none of them
            request = server.requests.pop(0)
            model = orjson.loads(request.body).get("model") if request.body.startswith(b"{") else None
            print(f"LLM stand-in: {request.path} (model {model}), a {len(request.body)}-byte request", flush=True)
    server.stop()


if __name__ == "__main__":
    configure_logging("llm-standin")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
