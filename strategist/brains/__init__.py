"""Two brains behind one interface (`base.Brain`): the deterministic rule brain and an LLM brain that speaks the
OpenAI chat-completions protocol. Both answer with a patch on the active policy and a rationale."""
