"""The secrets in a configuration, gathered in one list so that logs, errors and the CLI can mask
them (SPEC §2.6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.settings.model import Settings

__all__ = ["secret_values"]


def secret_values(settings: Settings) -> list[str]:
    """Every secret in the settings, for masking in logs."""
    secrets = [settings.kafka.sasl_password]
    for account in settings.accounts.values():
        secrets += [account.access_key, account.secret_key, account.api_key]
    if settings.schema_registry is not None:
        secrets.append(settings.schema_registry.basic_auth_user_info)
    values = [secret.get_secret_value() for secret in secrets if secret is not None]
    # a registry's user:password may also show up as the password alone
    return values + [value.partition(":")[2] for value in values if ":" in value]
