import torch
from torch.utils.data import DataLoader, Subset

from segkit.data.sampling import EpochSampler, SeededSamples, sample_seed


def indices(sampler):
    return [index for index, _ in sampler]


def test_permutation_depends_on_seed_and_epoch_only_and_restarts_mid_epoch():
    sampler = EpochSampler(20, shuffle=True, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    again = EpochSampler(20, shuffle=True, seed=3)
    again.set_epoch(2, start=7)
    assert list(again) == full[7:] and len(again) == 13
    sampler.set_epoch(3)
    assert indices(sampler) != [i for i, _ in full] and sorted(indices(sampler)) == list(range(20))


def test_training_shards_are_equal_and_cover_everything_even_when_smaller_than_the_world():
    for size, world in [(10, 3), (3, 8), (8, 2)]:
        shards = [indices(EpochSampler(size, True, 0, rank, world)) for rank in range(world)]
        assert len({len(s) for s in shards}) == 1
        assert set().union(*shards) == set(range(size))


def test_evaluation_shards_count_every_image_once():
    shards = [indices(EpochSampler(10, False, 0, rank, 3)) for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))


def test_each_sample_is_seeded_from_its_position_and_the_caller_rng_is_untouched():
    class Draws:
        pipeline = None

        def __len__(self):
            return 4

        def __getitem__(self, index):
            return torch.rand(1).item()

    samples = SeededSamples(Draws())
    state = torch.get_rng_state()
    first = samples[(1, sample_seed(0, 0, 1))]
    assert samples[(1, sample_seed(0, 0, 1))] == first != samples[(1, sample_seed(0, 1, 1))]
    assert torch.equal(torch.get_rng_state(), state)
    assert len({sample_seed(0, e, i) for e in range(3) for i in range(50)}) == 150


def test_a_subset_inside_seeded_samples_gets_plain_indices():
    """SeededSamples must not forward dunders: DataLoader would call Subset.__getitems__ with (index, seed)."""

    class Numbers:
        pipeline = None

        def __len__(self):
            return 6

        def __getitem__(self, index):
            return index

    sampler = EpochSampler(3, shuffle=False)
    loader = DataLoader(SeededSamples(Subset(Numbers(), [5, 4, 3])), batch_size=3, sampler=sampler)
    assert next(iter(loader)).tolist() == [5, 4, 3]
