"""Hessian rows split over Python threads on CPU equal the plain loop bit for bit."""
import torch
from ase.build import bulk

from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import build_model, graph_hessian_vector_products


def test_threaded_rows_equal_the_loop_and_report_progress(tiny_config):
    model = build_model(tiny_config, dtype=torch.float64, seed=0)
    atoms = bulk(tiny_config.species[0], "fcc", a=3.6) * (2, 2, 1)
    atoms.rattle(0.05, seed=3)
    graph = atoms_to_graph(atoms, tiny_config.cutoff, tiny_config.species, dtype=torch.float64)
    vectors = torch.randn(13, len(atoms), 3, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(0))
    before = torch.get_num_threads()
    loop = graph_hessian_vector_products(model, graph, vectors, row_threads=1)
    seen = []
    split = graph_hessian_vector_products(model, graph, vectors, row_threads=3,
                                    progress=lambda done, total: seen.append((done, total)))
    assert torch.equal(loop, split)
    assert sorted(seen) == [(k, 13) for k in range(1, 14)]  # 3 threads of >= 4 rows
    assert torch.get_num_threads() == before  # restored


def test_an_error_in_a_row_thread_reaches_the_caller(tiny_config):
    model = build_model(tiny_config, dtype=torch.float64, seed=0)
    atoms = bulk(tiny_config.species[0], "fcc", a=3.6) * (2, 1, 1)
    graph = atoms_to_graph(atoms, tiny_config.cutoff, tiny_config.species, dtype=torch.float64)

    def boom(done, total):
        raise RuntimeError("progress failed")

    before = torch.get_num_threads()
    try:
        graph_hessian_vector_products(model, graph, torch.ones(8, len(atoms), 3, dtype=torch.float64),
                                row_threads=2, progress=boom)
    except RuntimeError as err:
        assert "progress failed" in str(err)
    else:
        raise AssertionError("the error was swallowed")
    assert torch.get_num_threads() == before
