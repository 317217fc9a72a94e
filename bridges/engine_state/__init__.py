"""The snapshot bridge: today's trade engine publishes no `cio.portfolio.snapshot`, so this process polls its
`GET /state?symbol=` for the configured symbols, turns the answers into one `PortfolioSnapshot` and publishes it
(docs/contracts.md, "From today's engine: the snapshot bridge"). `python -m bridges.engine_state`.

- `convert`: the pure part: the engine's payload validated, the answers of one round turned into a snapshot or
  refused (nothing made up).
- `engine`: reading the state API over HTTP (timeouts, bounded bodies, no redirects).
- `service`: the NATS shell: one poll round per step, publish or alert, never both.
"""
