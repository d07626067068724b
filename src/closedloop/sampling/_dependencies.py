"""Imported first by the package: a missing ``sampling`` extra is named before anything
else fails on it."""

from closedloop._extras import require

require("yaml", "sampling", "closedloop.sampling")
require("re2", "sampling", "closedloop.sampling")
