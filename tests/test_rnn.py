"""NoiseRNN against torch.nn.RNN, positive homogeneity, Gumbel emission statistics, generation semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmmrnn import NoiseRNN
from hmmrnn.rnn import gumbel_emit


def _reference_rnn(model: NoiseRNN) -> torch.nn.RNN:
    ref = torch.nn.RNN(model.noise_dim, model.hidden, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(model.w_in)
        ref.weight_hh_l0.copy_(model.w_rec)
    return ref


@pytest.mark.parametrize("hidden, inp", [(7, 3), (40, 10)])
def test_rollout_matches_torch_rnn(hidden, inp):
    model = NoiseRNN(hidden, inp, 3, seed=1)
    noise = torch.randn(5, 25, inp, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.rollout(noise)
        theirs, _ = _reference_rnn(model)(noise)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
        h0 = torch.rand(5, hidden)
        torch.testing.assert_close(model.rollout(noise, h0), _reference_rnn(model)(noise, h0[None])[0],
                                   atol=1e-5, rtol=0)


def test_step_is_the_one_step_map():
    model = NoiseRNN(6, 4, 3, seed=2)
    h = torch.randn(3, 6)
    x = torch.randn(3, 4)
    expected = torch.relu(h @ model.w_rec.T + x @ model.w_in.T)
    torch.testing.assert_close(model.step(h, x), expected)
    # a rollout of one step is the step from h0 = 0
    torch.testing.assert_close(model.rollout(x[:, None])[:, 0], model.step(torch.zeros(3, 6), x))


@pytest.mark.parametrize("scale", [0.1, 2.0, 3.7])
def test_positive_homogeneity(scale):
    model = NoiseRNN(30, 8, 3, seed=3)
    noise = torch.randn(4, 50, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = model.double()
    with torch.no_grad():
        hidden = model.rollout(noise)
        scaled = model.rollout(scale * noise)
        torch.testing.assert_close(scaled, scale * hidden, atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(model.readout(scaled), scale * model.readout(hidden), atol=1e-10, rtol=1e-10)
    assert hidden.abs().max() > 0  # not trivially zero


def test_initialisation_is_pytorch_default_and_seeded():
    a, b = NoiseRNN(50, 10, 3, seed=4), NoiseRNN(50, 10, 3, seed=4)
    for name in ("w_in", "w_rec", "w_out"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=0, rtol=0)
        w = getattr(a, name)
        bound = 1 / math.sqrt(50)
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
        # uniform on (-bound, bound): variance bound^2 / 3
        assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.2)
    assert not torch.equal(a.w_rec, NoiseRNN(50, 10, 3, seed=5).w_rec)


def test_gumbel_emission_frequencies_match_softmax():
    logits = torch.tensor([[1.5, -0.3, 0.2], [0.0, 0.0, 2.0]])
    n = 100_000
    samples = gumbel_emit(logits.expand(n, 2, 3), generator=torch.Generator().manual_seed(0))
    assert torch.all(samples.sum(-1) == 1) and torch.all((samples == 0) | (samples == 1))
    freq = samples.mean(0).numpy()
    probs = torch.softmax(logits, -1).numpy()
    se = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) < 5 * se)


def test_gumbel_straight_through_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    weights = torch.randn(4, 3)
    y = gumbel_emit(logits, tau=0.7, generator=torch.Generator().manual_seed(3))
    (y * weights).sum().backward()
    # the gradient is that of softmax((z + g) / tau) with the same Gumbel draw
    z = logits.detach().clone().requires_grad_(True)
    g = -torch.empty_like(z).exponential_(generator=torch.Generator().manual_seed(3)).log()
    (torch.softmax((z + g) / 0.7, -1) * weights).sum().backward()
    torch.testing.assert_close(logits.grad, z.grad)


def test_generate_semantics_and_seed():
    model = NoiseRNN(20, 5, 3, seed=6)
    symbols, hidden, logits = model.generate(8, 12, seed=3)
    assert symbols.shape == (8, 12) and hidden.shape == (8, 12, 20) and logits.shape == (8, 12, 3)
    again, _, _ = model.generate(8, 12, seed=3)
    assert torch.equal(symbols, again)
    # sample() returns exactly generate()'s symbols for the same seed
    np.testing.assert_array_equal(model.sample(8, 12, seed=3), symbols.numpy())
    argmax, argmax_hidden, argmax_logits = model.generate(8, 12, seed=3, readout="argmax")
    assert torch.equal(argmax, argmax_logits.argmax(-1))
    torch.testing.assert_close(argmax_logits, model.readout(argmax_hidden))
    # generation runs the rollout engine block by block (100 steps, noise drawn in column form (steps, d,
    # batch)): replaying its noise through one rollout
    # gives the same hidden states across the block boundaries (argmax draws nothing but the noise)
    _, long_hidden, _ = model.generate(8, 250, seed=3, readout="argmax")
    gen = torch.Generator().manual_seed(3)
    noise = torch.cat([torch.randn(steps, 5, 8, generator=gen) for steps in (100, 100, 50)]).permute(2, 0, 1)
    torch.testing.assert_close(long_hidden, model.rollout(noise), atol=1e-5, rtol=1e-5)


def test_generate_in_batches_matches_one_batch_statistics():
    model = NoiseRNN(20, 5, 3, seed=6)
    small, _, _ = model.generate(3000, 10, seed=1, batch_size=256, keep_states=False)
    large, _, _ = model.generate(3000, 10, seed=1, batch_size=4096, keep_states=False)
    assert small.shape == large.shape == (3000, 10)
    f_small = np.bincount(small.numpy().ravel(), minlength=3) / small.numel()
    f_large = np.bincount(large.numpy().ravel(), minlength=3) / large.numel()
    np.testing.assert_allclose(f_small, f_large, atol=0.02)


def test_reference_semantics_first_symbol_is_uniform():
    model = NoiseRNN(20, 5, 3, seed=6)
    symbols, hidden, logits = model.generate(30_000, 4, seed=0, semantics="reference")
    assert torch.all(hidden[:, 0] == 0) and torch.all(logits[:, 0] == 0)
    freq = np.bincount(symbols[:, 0].numpy(), minlength=3) / 30_000
    assert np.all(np.abs(freq - 1 / 3) < 5 * np.sqrt(2 / 9 / 30_000))
    argmax, _, _ = model.generate(10, 4, seed=0, semantics="reference", readout="argmax")
    assert torch.all(argmax[:, 0] == 0)
    # the remaining length-1 steps are an ordinary rollout
    assert torch.all(hidden[:, 1:].abs().sum(-1) > 0)


def test_random_initial_state_and_bad_arguments():
    model = NoiseRNN(10, 3, 3, initial_state="random", seed=0)
    h0 = model.initial_hidden(1000, torch.Generator().manual_seed(0))
    assert h0.std().item() == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="initial_state"):
        NoiseRNN(10, 3, 3, initial_state="ones")
    with pytest.raises(ValueError, match="noise must have shape"):
        model.rollout(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="semantics"):
        model.generate(2, 3, semantics="paper")


def test_learned_initial_state_starts_every_chain_and_receives_gradient():
    """initial_state="learned": a parameter h0 (H,), zero at initialisation, that every chain starts
    from: with zero noise h_1 = relu(W_rec h0), and the loss of the first output reaches h0."""
    model = NoiseRNN(8, 3, 3, initial_state="learned", seed=0)
    assert model.weight_names == ("w_in", "w_rec", "w_out", "h0")
    assert torch.equal(model.h0.detach(), torch.zeros(8))
    with torch.no_grad():
        model.h0.copy_(torch.linspace(-1, 2, 8))
    start = model.initial_hidden(4)
    assert start.shape == (4, 8) and torch.equal(start[3], model.h0.detach())
    hidden = model.rollout(torch.zeros(4, 2, 3))
    expected = torch.relu(model.w_rec @ model.h0)
    torch.testing.assert_close(hidden[:, 0], expected.expand(4, 8).detach())
    torch.testing.assert_close(hidden[:, 1], torch.relu(model.w_rec @ expected).expand(4, 8).detach())
    _, _, logits = model(torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0)))
    logits[:, 0, 0].sum().backward()
    assert model.h0.grad is not None and model.h0.grad.abs().sum() > 0
    # the zero and random starts have no h0 parameter
    assert NoiseRNN(8, 3, 3).weight_names == ("w_in", "w_rec", "w_out")


def test_stationary_initial_state_is_the_state_after_burn_in():
    """initial_state="stationary": h_0 is the state after ``burn_in`` noisy steps from 0 with the
    generator's noise (oracle: the same rollout by hand), so the first outputs already have the long
    run's frequencies, unlike those from h_0 = 0."""
    model = NoiseRNN(12, 3, 3, initial_state="stationary", burn_in=7, seed=1)
    start = model.initial_hidden(5, torch.Generator().manual_seed(4))
    noise = torch.randn(5, 7, 3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        by_hand = NoiseRNN(12, 3, 3, seed=1).rollout(noise, torch.zeros(5, 12))[:, -1]
    torch.testing.assert_close(start, by_hand)
    assert not start.requires_grad
    with torch.no_grad():  # a contracting network with a long memory: the start matters
        model.w_rec.copy_(0.9 * torch.eye(12))
        model.w_out.copy_(torch.tensor([[1.0] * 6 + [0.0] * 6, [0.0] * 6 + [1.0] * 6, [0.0] * 12]) * 3)
    symbols, _ = model.long_run(4000, 60, seed=0)
    late = np.bincount(symbols[:, -20:].ravel(), minlength=3) / symbols[:, -20:].size
    first = np.bincount(symbols[:, 0], minlength=3) / len(symbols)
    np.testing.assert_allclose(first, late, atol=0.03)
    zero = NoiseRNN(12, 3, 3, seed=1)
    zero.load_state_dict(model.state_dict())
    zero_first = np.bincount(zero.long_run(4000, 1, seed=0)[0][:, 0], minlength=3) / 4000
    assert np.abs(zero_first - late).max() > 0.05  # from h_0 = 0 the first output is far flatter
    with pytest.raises(ValueError, match="burn_in"):
        NoiseRNN(4, 2, 3, initial_state="stationary", burn_in=0)


def test_rollout_is_step_iterated_with_gains_per_chain_and_without_input():
    """The one engine: with per-chain gains (B, H) or none, with noise or input-free, rollout equals
    NoiseRNN.step applied step by step."""
    model = NoiseRNN(7, 4, 3, seed=2)
    gen = torch.Generator().manual_seed(0)
    noise, h0 = torch.randn(3, 6, 4, generator=gen), torch.rand(3, 7, generator=gen)
    g_rec, g_in = torch.rand(3, 7, generator=gen) * 2, torch.rand(3, 7, generator=gen) * 2
    with torch.no_grad():
        for kwargs in ({}, {"recurrent_gain": g_rec}, {"input_gain": g_in}, {"recurrent_gain": g_rec[0]}):
            h, expected = h0, []
            for t in range(6):
                h = model.step(h, noise[:, t], **kwargs)
                expected.append(h)
            torch.testing.assert_close(model.rollout(noise, h0, **kwargs), torch.stack(expected, 1))
        h, expected = h0, []
        for t in range(5):
            h = model.step(h, None, recurrent_gain=g_rec)
            expected.append(h)
        torch.testing.assert_close(model.rollout(None, h0, steps=5, recurrent_gain=g_rec), torch.stack(expected, 1))
    with pytest.raises(ValueError, match="needs h0 and steps"):
        model.rollout(None, steps=5)


def test_the_column_form_without_autograd_equals_the_batch_major_loop():
    model = NoiseRNN(9, 4, 3, seed=1)
    gen = torch.Generator().manual_seed(2)
    noise, h0, gain = torch.randn(5, 7, 4, generator=gen), torch.rand(5, 9, generator=gen), torch.rand(9, generator=gen)
    for kwargs in ({}, {"input_gain": gain}):
        with torch.no_grad():
            columns = model.rollout(noise, h0, **kwargs)
        batch_major = model.rollout(noise, h0, **kwargs)  # autograd on: the batch-major loop
        assert batch_major.requires_grad and not columns.requires_grad
        torch.testing.assert_close(columns, batch_major.detach(), atol=1e-6, rtol=1e-5)
