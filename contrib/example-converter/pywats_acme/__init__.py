"""A pywats converter plugin for ACME ICT-200 result logs (an example to copy)."""

from pywats_acme.converter import AcmeArguments as AcmeArguments
from pywats_acme.converter import AcmeConverter as AcmeConverter
