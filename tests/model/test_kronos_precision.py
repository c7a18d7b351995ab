"""bf16 autocast and gradient checkpointing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kronos_train.model import (
    build_predictor,
    build_tokenizer,
    predictor_loss,
    set_gradient_checkpointing,
    tokenizer_loss,
)


def random_batch(batch: int = 4, length: int = 33, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, 6, generator=g)
    stamp = torch.stack([torch.randint(0, n, (batch, length), generator=g) for n in (60, 24, 7, 32, 13)], -1)
    return x, stamp.float()


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_quantizer_runs_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    tok = build_tokenizer("tiny-tokenizer").eval()
    x, _ = random_batch()
    with torch.no_grad():
        z = tok.prequant(x)
        loss32, q32, idx32 = tok.tokenizer(z)
        with bf16():
            loss16, q16, idx16 = tok.tokenizer(z)
            loss16b, _, idx16b = tok.tokenizer(z.bfloat16().float())
    assert q16.dtype == torch.float32 and loss16.dtype == torch.float32
    assert torch.equal(idx32, idx16) and torch.equal(q32, q16) and torch.equal(loss32, loss16)
    assert idx16b.dtype == torch.long and torch.isfinite(loss16b)


def test_bf16_tokens_agree_with_fp32_on_a_sample() -> None:
    torch.manual_seed(0)
    tok = build_tokenizer("tiny-tokenizer").eval()
    x, _ = random_batch(8, 64)
    with torch.no_grad():
        ref = tok.encode(x)
        with bf16():
            low = tok.encode(x)
            assert tok.prequant(x).dtype == torch.float32  # the projection feeding the signs stays fp32
    assert (ref == low).float().mean() > 0.9  # bf16 encoder noise may flip a few near-zero bits


def test_bf16_forward_backward_tokenizer_and_predictor() -> None:
    torch.manual_seed(0)
    tok, pred = build_tokenizer("tiny-tokenizer"), build_predictor("tiny-predictor")
    x, stamp = random_batch()
    with bf16():
        loss, parts = tokenizer_loss(tok, x)
    loss.backward()
    assert parts["bsq"].dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in tok.parameters())
    tok.eval()
    with bf16():
        loss, parts = predictor_loss(pred, tok, x, stamp)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"ce_s1", "ce_s2"}
    grads = [p.grad for p in pred.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def gradients(model: torch.nn.Module, loss_fn, checkpointing: bool, seed: int = 1) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    assert set_gradient_checkpointing(model, checkpointing) > 0
    torch.manual_seed(seed)  # same dropout masks and s1 samples in both runs
    loss_fn().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients(teacher_forcing: bool) -> None:
    torch.manual_seed(0)
    tok, pred = build_tokenizer("tiny-tokenizer"), build_predictor("tiny-predictor")  # predictor has dropout
    x, stamp = random_batch()

    def tok_loss() -> torch.Tensor:
        return tokenizer_loss(tok, x)[0]

    def pred_loss() -> torch.Tensor:
        return predictor_loss(pred, tok, x, stamp, teacher_forcing=teacher_forcing)[0]

    for model, fn in ((tok, tok_loss), (pred, pred_loss)):
        model.train()
        plain, ckpt = gradients(model, fn, False), gradients(model, fn, True)
        assert plain.keys() == ckpt.keys() and plain
        for name in plain:
            assert torch.allclose(plain[name], ckpt[name], atol=1e-6, rtol=1e-5), name
    set_gradient_checkpointing(pred, False)


def test_losses_match_the_official_formulas() -> None:
    torch.manual_seed(0)
    tok = build_tokenizer("tiny-tokenizer")
    x, _ = random_batch()
    loss, parts = tokenizer_loss(tok, x)
    (z_pre, z), bsq, _, _ = tok(x)
    assert torch.allclose(loss, (F.mse_loss(z_pre, x) + F.mse_loss(z, x) + bsq) / 2)
    assert set(parts) == {"recon_pre", "recon", "bsq"}
    from kronos_train.model import tokenizer_val_loss

    per_sample = tokenizer_val_loss(tok, x)
    assert per_sample.shape == (x.shape[0],)
    assert torch.allclose(per_sample.mean(), F.mse_loss(z, x), atol=1e-6)


def test_checkpointing_recomputes_blocks_only_in_training() -> None:
    tok = build_tokenizer("tiny-tokenizer")
    block = tok.encoder[0]  # runs once per forward
    calls = []
    original = block._block
    block._block = lambda *a: calls.append(1) or original(*a)
    x, _ = random_batch()
    set_gradient_checkpointing(tok, True)
    tokenizer_loss(tok, x)[0].backward()
    assert len(calls) == 2  # forward + recomputation in backward
    calls.clear()
    with torch.no_grad():
        tok(x)
    tok.eval()
    tokenizer_loss(tok, x)[0].backward()
    assert len(calls) == 2  # no_grad and eval: plain forwards


def test_padding_mask_true_means_padded() -> None:
    torch.manual_seed(0)
    tok, pred = build_tokenizer("tiny-tokenizer").eval(), build_predictor("tiny-predictor").eval()
    x, stamp = random_batch(2, 10)
    s1, s2 = tok.encode(x, half=True)
    none_padded = torch.zeros(2, 10, dtype=torch.bool)
    left_padded = none_padded.clone()
    left_padded[0, :4] = True
    with torch.no_grad():
        plain = pred(s1, s2, stamp, use_teacher_forcing=True, s1_targets=s1)
        masked = pred(s1, s2, stamp, padding_mask=none_padded, use_teacher_forcing=True, s1_targets=s1)
        padded = pred(s1, s2, stamp, padding_mask=left_padded, use_teacher_forcing=True, s1_targets=s1)
    for a, b in zip(plain, masked):
        assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.isfinite(t).all() for t in padded)
    loss, ce1, _ = pred.head.compute_loss(*padded, s1, s2, padding_mask=left_padded)
    expected = F.cross_entropy(padded[0][~left_padded], s1[~left_padded])
    assert torch.allclose(ce1, expected)
