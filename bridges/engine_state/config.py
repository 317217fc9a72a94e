"""The snapshot bridge's settings: `NATS_URL` as every part names it, everything else `CIO_` (README, Configuration)."""

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridges.engine_state.engine import checked_state_url
from cio_kernel.contracts.identity import IdentityError, symbol_key
from cio_kernel.defaults import LOCAL_NATS_URL

MAX_SYMBOLS = 500  # one round is one request per symbol: bounded


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIO_", extra="ignore")

    nats_url: str = Field(LOCAL_NATS_URL, validation_alias=AliasChoices("NATS_URL", "nats_url"))
    nats_inbox_prefix: str = "_INBOX"
    # The engine's state endpoint (its `GET /state`); the local stack's stand-in by default.
    engine_state_url: str = "http://127.0.0.1:18090/state"
    # Sent as `Authorization: Bearer` when set (the engine itself asks for none; a proxy in front of it may).
    engine_state_token: SecretStr | None = None
    # Comma-separated canonical symbols, spelled as the engine keys its positions (`BTCUSDT`): every symbol the
    # engine may hold a position in, or the round is refused (exposure outside them would go unseen).
    snapshot_symbols: str = ""
    snapshot_every_s: float = Field(5.0, gt=0)
    engine_timeout_s: float = Field(3.0, gt=0)
    engine_max_bytes: int = Field(65_536, gt=0)
    # Gross exposure the polled symbols may leave unaccounted for: USD plus a fraction of equity.
    snapshot_tolerance_usd: float = Field(1.0, ge=0)
    snapshot_tolerance_fraction: float = Field(0.001, ge=0, le=1)
    # Each kind of alert at most once per interval; an outage this long raises a critical one.
    snapshot_alert_every_s: float = Field(60.0, gt=0)
    snapshot_critical_after_s: float = Field(60.0, gt=0)
    log_level: str = "INFO"

    @field_validator("engine_state_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return checked_state_url(value)

    @model_validator(mode="after")
    def _symbols(self) -> "BridgeSettings":
        self.symbols()
        return self

    def symbols(self) -> tuple[str, ...]:
        raw = [part.strip() for part in self.snapshot_symbols.split(",") if part.strip()]
        if not raw:
            raise ValueError("CIO_SNAPSHOT_SYMBOLS is empty: name every symbol the engine may hold (BTCUSDT,ETHUSDT)")
        if len(raw) > MAX_SYMBOLS:
            raise ValueError(f"CIO_SNAPSHOT_SYMBOLS names {len(raw)} symbols; at most {MAX_SYMBOLS}")
        try:
            symbols = [symbol_key(symbol) for symbol in raw]
        except IdentityError as exc:
            raise ValueError(f"CIO_SNAPSHOT_SYMBOLS: {exc}") from None
        return tuple(dict.fromkeys(symbols))
