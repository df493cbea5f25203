"""The devices entities belong to: the hub (the store itself) and one per provider account."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .models import Breakdown, Snapshot, account_key
from .providers import provider

HUB = "hub"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device: the hub ("OpenUsage") or one provider account ("Claude Code")."""

    key: str
    label: str  # what it is: "OpenUsage", "Claude Code"
    model: str
    manufacturer: str
    provider_id: str | None = None
    account_id: str | None = None
    shown_account: str | None = None  # the account, where the name must tell it apart from another

    @property
    def is_hub(self) -> bool:
        """Whether this is the store's own device, which the account devices connect through."""
        return self.key == HUB

    @property
    def name(self) -> str:
        """The device's name in Home Assistant: "Claude Code", "OpenRouter (work)"."""
        return self.label if self.shown_account is None else f"{self.label} ({self.shown_account})"

    def name_on(self, machine: str) -> str:
        """Name the device with the machine it is seen from: "Claude Code (laptop)", "OpenRouter (work, laptop)"."""
        return f"{self.label} ({', '.join(filter(None, (self.shown_account, machine)))})"


HUB_DEVICE = DeviceSpec(key=HUB, label="OpenUsage", model="Telemetry store", manufacturer="OpenUsage")


def account_device(provider_id: str, account_id: str, accounts: int) -> DeviceSpec:
    """Describe a provider account's device, named after the provider ("Claude Code").

    Where the provider has more than one account (`accounts`), those other than openusage's default one
    carry their id ("OpenRouter (work)").
    """
    known = provider(provider_id)
    shown_account = None if accounts == 1 or account_id == known.default_account else account_id
    return DeviceSpec(
        key=account_key(provider_id, account_id),
        label=known.name,
        model=known.name,
        manufacturer=known.maker,
        provider_id=provider_id,
        account_id=account_id,
        shown_account=shown_account,
    )


def account_devices(snapshot: Snapshot) -> dict[str, DeviceSpec]:
    """List one device per (provider, account) with usage or a quota in the store, by device key."""
    pairs = {tuple(key.partition("/")[::2]) for key in snapshot.usage.breakdowns[Breakdown.ACCOUNT]}
    pairs |= {(q.provider_id, q.account_id) for q in snapshot.quotas.values()}
    accounts = Counter(provider_id for provider_id, _ in pairs)
    return {
        account_key(provider_id, account_id): account_device(provider_id, account_id, accounts[provider_id])
        for provider_id, account_id in sorted(pairs)
    }


def all_devices(snapshot: Snapshot) -> dict[str, DeviceSpec]:
    """Return the hub, then every account device, by device key."""
    return {HUB: HUB_DEVICE, **account_devices(snapshot)}
