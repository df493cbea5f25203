"""The providers of openusage by the names people know them by (openusage-store.md §6.3).

Also how each provider's money metrics are to be read.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple


class Provider(NamedTuple):
    """A provider's display name, who makes it, and the account id openusage gives it by default."""

    name: str
    maker: str
    default_account: str | None = None  # None: the provider id


# openusage's provider registry (internal/providers/registry.go), by provider id.
PROVIDERS: dict[str, Provider] = {
    "alibaba_cloud": Provider("Alibaba Cloud", "Alibaba Cloud"),
    "amp": Provider("Amp", "Sourcegraph"),
    "anthropic": Provider("Anthropic API", "Anthropic"),
    "azure_openai": Provider("Azure OpenAI", "Microsoft"),
    "claude_code": Provider("Claude Code", "Anthropic", "claude-code"),
    "codebuff": Provider("Codebuff", "Codebuff"),
    "codex": Provider("Codex", "OpenAI", "codex-cli"),
    "copilot": Provider("GitHub Copilot", "GitHub"),
    "crush": Provider("Crush", "Charm"),
    "cursor": Provider("Cursor", "Anysphere", "cursor-ide"),
    "deepseek": Provider("DeepSeek", "DeepSeek"),
    "droid": Provider("Droid", "Factory"),
    "gemini_api": Provider("Gemini API", "Google"),
    "gemini_cli": Provider("Gemini CLI", "Google", "gemini-cli"),
    "goose": Provider("Goose", "Block"),
    "groq": Provider("Groq", "Groq"),
    "hermes": Provider("Hermes", "Nous Research"),
    "kilocode": Provider("Kilo Code", "Kilo Code"),
    "kimi_cli": Provider("Kimi CLI", "Moonshot AI"),
    "kiro": Provider("Kiro", "Amazon", "kiro-cli"),
    "mistral": Provider("Mistral", "Mistral AI"),
    "moonshot": Provider("Moonshot AI", "Moonshot AI", "moonshot-ai"),
    "mux": Provider("Mux", "Coder"),
    "ollama": Provider("Ollama", "Ollama", "ollama-local"),
    "openai": Provider("OpenAI API", "OpenAI"),
    "openclaw": Provider("OpenClaw", "OpenClaw"),
    "opencode": Provider("OpenCode", "SST"),
    "openrouter": Provider("OpenRouter", "OpenRouter"),
    "perplexity": Provider("Perplexity", "Perplexity"),
    "pi": Provider("Pi", "Pi"),
    "qwen_cli": Provider("Qwen Code", "Alibaba Cloud"),
    "roocode": Provider("Roo Code", "Roo Code"),
    "xai": Provider("xAI", "xAI"),
    "zai": Provider("Z.ai", "Z.ai"),
    "zed": Provider("Zed", "Zed Industries"),
}


_ACRONYMS = frozenset({"ai", "api", "cli", "ide", "llm", "sdk"})


def provider(provider_id: str) -> Provider:
    """Return the provider's names; an id openusage does not list reads as words (`my-llm` → `My LLM`)."""
    known = PROVIDERS.get(provider_id)
    if known is not None:
        return known if known.default_account else known._replace(default_account=provider_id)
    words = [w for w in re.split(r"[_\-\s.]+", provider_id) if w]
    name = " ".join(w.upper() if w.lower() in _ACRONYMS else w[:1].upper() + w[1:] for w in words)
    return Provider(name or "Unknown provider", name or "Unknown provider", provider_id)


class MoneyKind(enum.Enum):
    """How a money metric is to be read (openusage's CreditMetrics, openusage-store.md §2.9)."""

    BALANCE = "balance"  # what is left: `remaining`
    SPEND = "spend"  # money spent so far (openusage: cumulative): `used`
    LIMIT = "limit"  # a cap: `limit`


# What providers declare (openusage-store.md §6.3); other metrics are inferred from their window and name.
DECLARED_MONEY: dict[tuple[str, str], MoneyKind] = {
    ("alibaba_cloud", "daily_spend"): MoneyKind.SPEND,
    ("alibaba_cloud", "monthly_spend"): MoneyKind.SPEND,
    ("alibaba_cloud", "spend_limit"): MoneyKind.LIMIT,
    ("amp", "total_cost"): MoneyKind.SPEND,
    ("deepseek", "total_balance"): MoneyKind.BALANCE,
    ("mistral", "credit_balance"): MoneyKind.BALANCE,
    ("mistral", "monthly_budget"): MoneyKind.LIMIT,
    ("mistral", "monthly_spend"): MoneyKind.SPEND,
    ("moonshot", "available_balance"): MoneyKind.BALANCE,
    ("moonshot", "cash_balance"): MoneyKind.BALANCE,
    ("moonshot", "voucher_balance"): MoneyKind.BALANCE,
    ("openrouter", "credit_balance"): MoneyKind.SPEND,
    ("perplexity", "available_balance"): MoneyKind.BALANCE,
    ("perplexity", "total_spend"): MoneyKind.SPEND,
    ("xai", "credits"): MoneyKind.BALANCE,
    ("zai", "credit_balance"): MoneyKind.BALANCE,
    ("zai", "spend_limit"): MoneyKind.LIMIT,
}
_CUMULATIVE_WINDOWS = frozenset({"lifetime", "all-time", "all", "alltime"})


def money_kind(provider_id: str, key: str, window: str | None) -> MoneyKind:
    """Return what a money metric measures.

    It is declared by the provider, else inferred as openusage infers it (an all-time window is spend, a `current` one a
    balance), else from its key.
    """
    declared = DECLARED_MONEY.get((provider_id, key))
    if declared is not None:
        return declared
    window = (window or "").strip().lower()
    if window in _CUMULATIVE_WINDOWS:
        return MoneyKind.SPEND
    if window == "current" or "balance" in key:
        return MoneyKind.BALANCE
    if "limit" in key or "budget" in key:
        return MoneyKind.LIMIT
    return MoneyKind.SPEND


# Quota metric keys openusage providers write (openusage-store.md §6.3), with their English names.
KNOWN_QUOTA_METRICS: dict[str, str] = {
    "available_balance": "Available balance",
    "burn_rate": "Burn rate",
    "chat_quota": "Chat quota",
    "codex_credit_limit": "Credit limit",
    "codex_credit_percent_used": "Credits used",
    "completions_quota": "Completions quota",
    "console_balance": "Console balance",
    "credit_balance": "Credit balance",
    "credit_balance_spent": "Credits used",  # a provider whose `credit_balance` counts what was spent
    "credits": "Credits",
    "monthly_limit": "Monthly limit",
    "monthly_spend": "Monthly spend",
    "plan_api_percent_used": "Plan used (API)",
    "plan_auto_percent_used": "Plan used (auto)",
    "plan_percent_used": "Plan used",
    "plan_spend": "Plan spend",
    "premium_interactions_quota": "Premium requests",
    "quota": "Quota",
    "quota_flash": "Flash quota",
    "quota_pro": "Pro quota",
    "rate_limit_primary": "Primary rate limit",
    "rate_limit_secondary": "Secondary rate limit",
    "spend_limit": "Spend limit",
    "total_balance": "Total balance",
    "usage_daily": "Daily usage",
    "usage_five_hour": "5-hour usage",
    "usage_monthly": "Monthly usage",
    "usage_one_day": "Daily usage",
    "usage_seven_day": "Weekly usage",
    "usage_seven_day_cowork": "Weekly Cowork usage",
    "usage_seven_day_opus": "Weekly Opus usage",
    "usage_seven_day_sonnet": "Weekly Sonnet usage",
    "usage_weekly": "Weekly usage",
}
