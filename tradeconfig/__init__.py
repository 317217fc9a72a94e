"""The trade engine's trading configuration (its `TradingConfigManager`: global, per-symbol and per-symbol-side
parameters such as leverage, position sizing and default stops), read and changed through the control plane:
a change is proposed, approved by a risk officer other than its proposer, and only then pushed upstream
(docs/tradeconfig.md)."""
