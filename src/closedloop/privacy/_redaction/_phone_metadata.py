"""libphonenumber's metadata, typed as the redactors use it.

The metadata always sets the fields read here (a known region, its country code, general
description and format patterns), but the library's type stubs mark them optional; this
says so once, with a clear error should a future metadata release drop one.
"""

from __future__ import annotations

from typing import TypeVar

import phonenumbers
from phonenumbers import PhoneMetadata

_T = TypeVar("_T")


def required(value: _T | None, what: str) -> _T:
    """``value``, which libphonenumber's metadata always sets."""
    if value is None:
        raise ValueError(f"libphonenumber's metadata has no {what}")
    return value


def region_metadata(region: str) -> PhoneMetadata:
    """The metadata of a region libphonenumber knows (such as ``"US"``)."""
    return required(PhoneMetadata.metadata_for_region(region), f"region {region!r}")


def main_region_metadata(country_code: int) -> PhoneMetadata:
    """The metadata of the region whose formats every number of ``country_code`` uses."""
    return region_metadata(phonenumbers.region_code_for_country_code(country_code))
