"""Generating reference data: structure sets and calculators that label them.

Writes the phonopy files that :mod:`ase_fcnet.data` reads; nothing here is
needed to read data, train or compute phonons. Modules:

* :mod:`.cells` — prototype unit cells (rock salt, perovskite, Heusler, ...);
* :mod:`.prototypes` — the named structure sets of ``fcnet data generate --set``
  (strained, rattled and vacancy variants), the train / held-out split, the
  random helpers (:func:`~.prototypes.structure_rng`, :func:`~.prototypes.strained`,
  :func:`~.prototypes.random_strain`, :func:`~.prototypes.rattled`) and the
  supercell rule;
* :mod:`.universal` — the universal structure set of the teacher data;
* :mod:`.references` — named reference calculators (Stillinger-Weber Si,
  Tersoff SiC, EMT), the elements each covers, and their checked Hessians;
* :mod:`.generate` — phonopy data of any structures with any ASE calculator
  (``fcnet data generate``);
* :mod:`.teacher` — SevenNet-0 labels of the universal set (``fcnet data teacher``).

Submodules are imported on use, since some need optional extras (matscipy,
sevenn, pyxtal).
"""
