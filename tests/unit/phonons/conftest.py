"""Shared structures and matscipy calculators (exact analytic Hessians) for the phonon tests."""

import numpy as np
import pytest
from ase.build import bulk
from matscipy.calculators.manybody import Manybody
from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
    Stillinger_Weber_PRB_31_5262_Si,
    StillingerWeber,
)
from matscipy.calculators.manybody.explicit_forms.tersoff_brenner import (
    Erhart_PRB_71_035211_SiC,
    TersoffBrenner,
)

from ase_fcnet.phonons import phonopy_from_atoms

A_SI = 5.431
A_SIC = 4.36


def sw_si():
    return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))


def tersoff_sic():
    return Manybody(**TersoffBrenner(Erhart_PRB_71_035211_SiC))


def si_diamond_cubic():
    return bulk("Si", "diamond", a=A_SI, cubic=True)


def sic_zincblende_cubic():
    return bulk("SiC", "zincblende", a=A_SIC, cubic=True)


def sic_wurtzite():
    return bulk("SiC", "wurtzite", a=3.08, c=5.04)


def sic_rattled_primitive():
    atoms = bulk("SiC", "zincblende", a=A_SIC)
    atoms.positions += np.random.default_rng(7).normal(scale=0.03, size=atoms.positions.shape)
    return atoms


STRUCTURES = {
    "si-diamond": (si_diamond_cubic, sw_si, 2),
    "sic-zincblende": (sic_zincblende_cubic, tersoff_sic, 2),
    "sic-wurtzite": (sic_wurtzite, tersoff_sic, (3, 3, 2)),
    "sic-rattled": (sic_rattled_primitive, tersoff_sic, 3),
}


@pytest.fixture
def sw_calc():
    """Fresh Stillinger-Weber Si calculator."""
    return sw_si()


@pytest.fixture
def tersoff_calc():
    """Fresh Tersoff (Erhart-Albe) SiC calculator."""
    return tersoff_sic()


@pytest.fixture(scope="module", params=sorted(STRUCTURES))
def system(request):
    """(name, unit cell atoms, fresh calculator, supercell matrix) for each test structure."""
    build_atoms, build_calc, matrix = STRUCTURES[request.param]
    return request.param, build_atoms(), build_calc(), matrix


@pytest.fixture(scope="session")
def si_phonon():
    """SW Si, conventional cell, 2x2x2 supercell (64 atoms), analytic route."""
    return phonopy_from_atoms(si_diamond_cubic(), sw_si(), supercell_matrix=2)


@pytest.fixture(scope="session")
def sic_phonon():
    """Tersoff SiC zinc blende, conventional cell, 2x2x2 supercell (64 atoms), analytic route."""
    return phonopy_from_atoms(sic_zincblende_cubic(), tersoff_sic(), supercell_matrix=2)
