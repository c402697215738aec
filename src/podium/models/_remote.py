"""Models behind OpenAI-compatible HTTP endpoints (any provider, a gateway, or a local server)."""

from __future__ import annotations

import urllib.error
import urllib.request

from openai import AsyncOpenAI
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from podium.errors import ConfigurationError
from podium.models._config import RemoteModelSetting


def openai_compatible(name: str, setting: RemoteModelSetting) -> Model:
    """A pydantic-ai model for `setting`. The SDK does not retry: a failure reaches podium's router at once, which
    falls back to another tier and counts it against the provider's circuit breaker."""
    client = AsyncOpenAI(
        base_url=setting.base_url, api_key=setting.api_key(name), timeout=setting.timeout_s, max_retries=0
    )
    return OpenAIChatModel(setting.model, provider=OpenAIProvider(openai_client=client))


def check_endpoint(name: str, setting: RemoteModelSetting, timeout_s: float = 3.0) -> None:
    """Fail early, naming the setting, when an endpoint does not answer at all."""
    url = setting.base_url.rstrip("/") + "/models"
    try:
        urllib.request.urlopen(url, timeout=timeout_s).close()  # noqa: S310 - the URL is the operator's setting
    except urllib.error.HTTPError:
        return  # it answered, even if not with a model list: the endpoint is up
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigurationError(
            f"models.{name}.base_url = {setting.base_url!r} does not answer ({type(exc).__name__}: {exc}). Start "
            "the server, or fix the URL."
        ) from None
