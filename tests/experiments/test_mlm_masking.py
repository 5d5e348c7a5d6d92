"""MLM masking statistics on real text: counts add up, claims and figure render."""

import numpy as np
import pytest

from reglab.experiments import mlm_masking, mlm_masking_figures

TINY = mlm_masking.Config(n_draws=5, n_sequences=4, seq_len=16)


@pytest.fixture(scope="module")
def result():
    return mlm_masking.run(TINY)


def test_token_batch_is_framed_and_padded():
    tokens, vocab = mlm_masking.token_batch(TINY)
    assert tokens.shape == (4, 16)
    assert (tokens[:, 0] == vocab.index("[CLS]")).all()
    for row in tokens:
        n = int((row != 0).sum())
        assert row[n - 1] == vocab.index("[SEP]") and (row[n:] == 0).all()
    assert len(vocab) > 200  # real prose, not a toy vocabulary


def test_selected_tokens_split_exactly_into_mask_random_keep(result):
    for i in range(len(TINY.p_selects)):
        c = mlm_masking.counts(result, i)
        assert c["mask"] + c["random"] + c["keep"] == c["selected"]
        assert c["selected_special"] == 0 and c["unselected_changed"] == 0


def test_claims_and_figure_rerender_from_saved_result(result, tmp_path):
    result.save(tmp_path)
    again = mlm_masking.Result.load(tmp_path)
    claims = mlm_masking.claims(again)
    assert len(claims) == 2 * len(TINY.p_selects)
    assert all(np.isfinite(c.measured) for c in claims)
    (fig,) = mlm_masking_figures.figures(again)
    assert len(fig.figure.axes[0].lines) >= len(TINY.p_selects)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="p_selects must hold at least one rate"):
        mlm_masking.Config(p_selects=())
    with pytest.raises(ValueError, match="seq_len must be an integer >= 4"):
        mlm_masking.Config(seq_len=2)
