"""Screening many materials: phonons of each, one row per material in an ASE database.

>>> from ase_fcnet.screening import screen, ScreenSettings
>>> screen(["structures/"], "results.db", model="fcnet-small", workers=2)  # doctest: +SKIP

See docs/screening.md.
"""
from ase_fcnet.screening.driver import ScreenResult, screen
from ase_fcnet.screening.settings import ScreenSettings

__all__ = ["ScreenResult", "ScreenSettings", "screen"]
