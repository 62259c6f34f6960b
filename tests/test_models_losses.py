"""In-training fairness terms on their own: hand values, gradients, and planted effects in toy training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.models import (
    AttributeAdversary,
    FairnessRegulariser,
    attribute_leakage,
    exposure_divergence,
    grad_reverse,
    group_difference,
    group_mean_gap,
)
from fairaudit.models._losses import _BAD_KIND, _BAD_WEIGHT, _NEEDS


def test_group_difference_hand_cases():
    values = torch.tensor([1.0, 3.0, 6.0, 10.0, 4.0])
    # Two groups: means 2 and 6.
    assert float(group_difference(values[:3], torch.tensor([0, 0, 1]), 2)) == pytest.approx(4.0)
    # Three groups, means 2, 6, 7: pairwise |diffs| 4, 5, 1 -> mean 10/3; code -1 ignored.
    groups = torch.tensor([0, 0, 1, 2, 2])
    assert float(group_difference(values, groups, 3)) == pytest.approx(10 / 3)
    assert float(group_difference(values, torch.tensor([0, 0, 1, -1, 2]), 3)) == pytest.approx((4 + 2 + 2) / 3)
    # A single group present: 0, still differentiable.
    x = values.clone().requires_grad_()
    out = group_difference(x, torch.zeros(5, dtype=torch.int64), 2)
    out.backward()
    assert out.item() == 0.0 and x.grad.abs().sum() == 0


@settings(max_examples=30)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=20), st.data())
def test_group_difference_two_groups_is_abs_mean_difference(values, data):
    codes = data.draw(st.lists(st.integers(0, 1), min_size=len(values), max_size=len(values)))
    v, g = np.array(values), np.array(codes)
    got = float(group_difference(torch.tensor(v), torch.tensor(g), 2))
    if len(set(codes)) < 2:
        assert got == 0.0
    else:
        assert got == pytest.approx(abs(v[g == 0].mean() - v[g == 1].mean()), abs=1e-9)


def test_group_difference_gradient_pulls_group_means_together():
    x = torch.tensor([1.0, 1.0, 5.0], requires_grad=True)
    group_difference(x, torch.tensor([0, 0, 1]), 2).backward()
    # d|m1 - m0| / dx: group 0 (lower mean) gets -1/2 each, group 1 gets +1.
    assert x.grad.tolist() == [-0.5, -0.5, 1.0]


def test_exposure_divergence_hand_case_and_gradient():
    groups, target = torch.tensor([0, 0, 0, 1]), torch.tensor([0.5, 0.5])
    logits = torch.zeros(2, 4, requires_grad=True)
    value = exposure_divergence(logits, groups, target)
    # share = (0.75, 0.25): KL = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25)
    assert value.item() == pytest.approx(0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(2.0))
    value.backward()
    # Descending the gradient raises the starved group's logit and lowers the others.
    assert (logits.grad[:, 3] < 0).all() and (logits.grad[:, :3] > 0).all()
    matched = torch.tensor([[0.0, 0.0, 0.0, np.log(3.0)]])  # softmax (1/6, 1/6, 1/6, 1/2)
    assert float(exposure_divergence(matched, groups, target)) == pytest.approx(0.0, abs=1e-7)


def test_grad_reverse_flips_and_scales():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = grad_reverse(x, 3.0)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0])).sum().backward()
    assert x.grad.tolist() == [-3.0, -6.0]


def test_build_returns_none_when_off_and_draws_no_random_numbers():
    before = torch.random.get_rng_state()
    assert FairnessRegulariser.build("none", 1.0) is None
    assert FairnessRegulariser.build("adversarial", 0.0, user_groups=torch.tensor([0, 1]), dim=4) is None
    assert torch.equal(before, torch.random.get_rng_state())
    with pytest.raises(ValueError, match=_BAD_KIND.format(".*", "fair")[:20]):
        FairnessRegulariser.build("fair", 1.0)
    with pytest.raises(ValueError, match="fairness_weight must be"):
        FairnessRegulariser.build("difference", -1.0)
    assert "finite" in _BAD_WEIGHT
    with pytest.raises(ValueError, match=_NEEDS.format("exposure", "item_groups and item_target")):
        FairnessRegulariser.build("exposure", 1.0, item_groups=torch.tensor([0, 1]))


def test_regulariser_terms_equal_the_functions_times_weight():
    users, items = torch.tensor([0, 1, 2]), torch.tensor([1, 0])
    user_groups, item_groups = torch.tensor([0, 1, 1]), torch.tensor([0, 1])
    losses, logits = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    target = torch.tensor([0.3, 0.7])
    diff = FairnessRegulariser.build("difference", 0.5, user_groups=user_groups)
    assert float(diff(users=users, losses=losses)) == pytest.approx(0.5 * 2.0)
    expo = FairnessRegulariser.build("exposure", 2.0, item_groups=item_groups, item_target=target)
    expected = 2.0 * exposure_divergence(logits, item_groups[items], target)
    assert float(expo(users=users, items=items, logits=logits)) == pytest.approx(float(expected))


def _toy_groups(seed: int = 0, n: int = 400):
    """Two user groups; group 1's labels are much noisier, so its training loss is higher."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen)
    groups = (torch.arange(n) % 2).long()
    logits = x @ torch.tensor([2.0, -1.0, 0.5, 0.0, 1.0])
    flip = (torch.rand(n, generator=gen) < torch.where(groups == 1, 0.35, 0.05)).float()
    labels = ((logits > 0).float() + flip) % 2
    # A group feature lets the model trade accuracy between groups.
    return torch.cat([x, groups[:, None].float()], 1), labels, groups


def _train_logistic(x, labels, groups, weight: float, steps: int = 300):
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], 1)
    reg = FairnessRegulariser.build("difference", weight, user_groups=groups)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    users = torch.arange(len(x))
    for _ in range(steps):
        losses = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), labels, reduction="none")
        loss = losses.mean() + (reg(users=users, losses=losses) if reg is not None else 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), labels, reduction="none")
    return float(group_difference(losses, groups, 2)), float(losses.mean())


def test_difference_loss_shrinks_the_planted_group_loss_gap():
    x, labels, groups = _toy_groups()
    gap_0, loss_0 = _train_logistic(x, labels, groups, 0.0)
    gap_1, loss_1 = _train_logistic(x, labels, groups, 2.0)
    assert gap_0 > 0.2  # the planted gap
    assert gap_1 < gap_0 / 2  # the term removes most of it ...
    assert loss_1 > loss_0  # ... at a cost in overall training loss


def _train_encoder(weight: float, objective: str = "reversal", steps: int = 300):
    """Linear encoder of user features with a planted attribute signal, trained on a task plus the adversary."""
    gen = torch.Generator().manual_seed(1)
    n = 400
    attr = (torch.arange(n) % 2).long()
    x = torch.randn(n, 6, generator=gen)
    x[:, 0] += 3.0 * attr  # the attribute leaks through feature 0 ...
    target = x[:, 1:3].sum(1, keepdim=True)  # ... which the task does not need
    torch.manual_seed(0)
    encoder = torch.nn.Linear(6, 4)
    head = torch.nn.Linear(4, 1)
    reg = FairnessRegulariser.build("adversarial", weight, user_groups=attr, dim=4, adversary_objective=objective)
    params = [*encoder.parameters(), *head.parameters(), *(reg.parameters() if reg is not None else [])]
    opt = torch.optim.Adam(params, lr=0.02)
    users = torch.arange(n)
    for _ in range(steps):
        z = encoder(x)
        loss = torch.nn.functional.mse_loss(head(z), target)
        if reg is not None:
            loss = loss + reg(users=users, user_vectors=z)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = encoder(x)
        task = float(torch.nn.functional.mse_loss(head(z), target))
    return attribute_leakage(z.numpy(), attr.numpy()), task, reg


@pytest.mark.parametrize("objective", ["mean_matching", "reversal"])
def test_adversary_removes_the_planted_attribute_from_a_linear_encoder(objective):
    """Both objectives work on a rigid encoder: it cannot flip the attribute's encoding, only drop it.
    (The LLM recommender's per-item history embeddings turn reversal's label-carrying gradient into a
    stronger, flipped encoding: tests/test_mitigation_training.py.)"""
    leak_0, task_0, _ = _train_encoder(0.0)
    leak_1, task_1, reg = _train_encoder(1.0, objective)
    assert leak_0["accuracy"] > 0.8  # without the adversary the attribute is easy to recover
    assert leak_1["leakage"] < leak_0["leakage"] / 2
    assert task_1 < 0.2  # the task is still solved
    assert 0.0 <= reg.last_adversary_accuracy <= 1.0


def test_adversary_ignores_unlabelled_users():
    adv = AttributeAdversary(3, 2)
    classifier, encoder, acc = adv.loss(torch.randn(4, 3), torch.tensor([-1, -1, -1, -1]))
    assert float(classifier) == 0.0 and float(encoder) == 0.0 and np.isnan(acc)
    with pytest.raises(ValueError, match="adversary_objective must be one of"):
        AttributeAdversary(3, 2, "erase")


@pytest.mark.parametrize("objective", ["mean_matching", "reversal"])
def test_adversary_parts_train_disjoint_parameters(objective):
    """The classifier's loss reaches only the classifier; the encoder's term only the vectors."""
    torch.manual_seed(0)
    adv = AttributeAdversary(3, 2, objective)
    vectors = torch.randn(5, 3, requires_grad=True)
    classifier, encoder, _ = adv.loss(vectors, torch.tensor([0, 1, 0, 1, -1]))
    inputs = [vectors, *adv.parameters()]
    to_vectors, *to_params = torch.autograd.grad(classifier, inputs, allow_unused=True)
    assert to_vectors is None and all(g is not None for g in to_params)
    to_vectors, *to_params = torch.autograd.grad(encoder, inputs, allow_unused=True)
    assert to_vectors is not None and all(g is None for g in to_params)
    assert to_vectors[4].abs().sum() == 0  # the unlabelled row takes no part


def test_mean_matching_and_reversal_terms_by_hand():
    torch.manual_seed(0)
    vectors = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3])
    matching = AttributeAdversary(3, 4, "mean_matching")
    assert matching.loss(vectors, labels)[1].item() == pytest.approx(group_mean_gap(vectors, labels, 4).item())
    reversal = AttributeAdversary(3, 4, "reversal")
    _, encoder, _ = reversal.loss(vectors, labels)
    (reversed_grad,) = torch.autograd.grad(encoder, vectors)
    (plain_grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(reversal(vectors), labels), vectors)
    # Reversal: the value is the classifier's cross-entropy, its gradient to the vectors is negated.
    assert encoder.item() == pytest.approx(torch.nn.functional.cross_entropy(reversal(vectors), labels).item())
    torch.testing.assert_close(reversed_grad, -plain_grad)


@settings(max_examples=30)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_group_mean_gap_is_scale_free_and_zero_exactly_for_equal_means(seed, scale):
    gen = torch.Generator().manual_seed(seed)
    groups = torch.arange(60) % 3
    vectors = torch.randn(60, 4, generator=gen, dtype=torch.float64) + groups[:, None] * 1.5
    gap = group_mean_gap(vectors, groups, 3)
    assert 0 < gap <= 1
    assert group_mean_gap(vectors * scale, groups, 3).item() == pytest.approx(gap.item(), rel=1e-9)
    # Move every group onto the overall mean: the gap vanishes.
    means = torch.stack([vectors[groups == g].mean(0) for g in range(3)])
    centred = vectors - means[groups] + vectors.mean(0)
    assert group_mean_gap(centred, groups, 3).item() == pytest.approx(0.0, abs=1e-12)


def test_zero_mean_gap_leaves_a_linear_probe_at_the_base_rate():
    """Linear guardedness (Belrose et al. 2023): once the groups share a mean, logistic regression
    recovers nothing, although the groups still differ in spread; a small mean shift is read at once."""
    labels = np.repeat([0, 1], 1000)
    vectors = np.random.default_rng(0).normal(size=(2000, 5)) * np.where(labels[:, None] == 1, 2.0, 1.0)
    vectors -= np.stack([vectors[labels == g].mean(0) for g in (0, 1)])[labels]  # equal group means
    assert group_mean_gap(torch.as_tensor(vectors), torch.as_tensor(labels), 2).item() == pytest.approx(0.0, abs=1e-12)
    assert attribute_leakage(vectors, labels)["leakage"] < 0.02  # -0.023 here; chance is 0
    shifted = vectors + labels[:, None] * 0.5
    assert group_mean_gap(torch.as_tensor(shifted), torch.as_tensor(labels), 2) > 0.01
    assert attribute_leakage(shifted, labels)["leakage"] > 0.1  # 0.155 here
