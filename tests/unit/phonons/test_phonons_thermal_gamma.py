"""Γ acoustic modes of exact force constants must not enter the thermal sums."""
import warnings

import numpy as np
from ase.build import bulk
from matscipy.calculators.manybody import Manybody
from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
    StillingerWeber,
    Stillinger_Weber_PRB_31_5262_Si,
)

from ase_fcnet.phonons import phonopy_from_atoms, thermal_properties


def test_gamma_acoustic_modes_do_not_bias_free_energy():
    calc = Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))
    phonon = phonopy_from_atoms(bulk("Si", "diamond", a=5.431), calc, supercell_matrix=[2, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # phonopy's GammaAcousticWarning would fail here
        ours = thermal_properties(phonon, t_min=100, t_max=1000, t_step=300, mesh=[6, 6, 6])
    # Reference: drop every mode below 1e-3 THz (only the three at Γ are that low).
    phonon.run_mesh([6, 6, 6], is_gamma_center=True)
    ref = phonon.run_thermal_properties(t_min=100, t_max=1000, t_step=300, cutoff_frequency=1e-3)
    np.testing.assert_allclose(ours.free_energy, ref.free_energy, rtol=0, atol=1e-9)
    included = phonon.run_thermal_properties(t_min=100, t_max=1000, t_step=300)
    assert abs(included.free_energy[-1] - ref.free_energy[-1]) > 1e-3  # the bias is real
