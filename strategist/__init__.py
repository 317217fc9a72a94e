"""The Strategist: periodic and triggered reasoning cycles that propose policy versions (docs/strategist.md).

It never sits on the intent path and can only create `proposed` versions; a risk officer approves and activates
(or, where an officer allowed it, a proposal that provably only tightens is approved under that authority)."""
