"""LAnA: frozen DINOv3 patches as a GPT-2 prefix, with a per-layer anatomical bias on attention.

``image (S px) -> DINOv3ViT (frozen) -> drop CLS + registers -> Linear -> prefix P (N tokens)``;
the decoder input is ``[P ; wte(report)]`` with positions 0 … N+T−1 (the learned position table is
linearly interpolated to fit), and in every GPT-2 block the attention logits get layer ℓ's smoothed
lung/heart map on the N image-patch keys (see ``attention.py``, ``smoothing.py``).

The model owns its own ``forward`` (rather than wrapping ``GPT2LMHeadModel``) because the per-layer
maps have to travel from ``generate`` through every block into the attention function as keyword
arguments, and ``GPT2Model`` forwards those while ``GPT2LMHeadModel`` drops them.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    DINOv3ViTModel,
    GenerationMixin,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Model,
    PreTrainedModel,
)
from transformers.modeling_outputs import CausalLMOutputWithPast

from rrg_bench.baselines.anat_attn.attention import IMPLEMENTATION_NAMES, AnatomicalSpec
from rrg_bench.baselines.anat_attn.configuration import AnatAttnConfig
from rrg_bench.baselines.anat_attn.smoothing import layer_stack
from rrg_bench.baselines.common.collate import IGNORE_INDEX


def interpolate_positions(weight: torch.Tensor, new_length: int) -> torch.Tensor:
    """Learned position table (P, D) -> (new_length, D) by 1-D linear interpolation, align_corners=True
    (the authors' 1024 -> 2048 expansion of GPT-2's ``wpe``): first and last rows are kept exactly."""
    table = weight.detach().float().t().unsqueeze(0)  # (1, D, P)
    out = F.interpolate(table, size=new_length, mode="linear", align_corners=True)
    return out[0].t().contiguous().to(weight.dtype)


def build_adapter(config: AnatAttnConfig) -> nn.Module:
    """The image adapter of ``config.adapter_type``: one Linear, or lana_radgen's ``mlp4`` (four Linears with GELU
    between them, LWA@a017e7b:src/lana_radgen/modeling_lana.py:64-77), whose state-dict names ``0.`` … ``6.`` are
    the authors' ``visual_projection.`` ones."""
    d_in, d_out = config.vision_config.hidden_size, config.text_config.n_embd
    if config.adapter_type == "mlp4":
        return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out), nn.GELU(),
                             nn.Linear(d_out, d_out), nn.GELU(), nn.Linear(d_out, d_out))
    return nn.Linear(d_in, d_out)


# transformers' own bases disagree on ``generation_config``'s type and declare ``_tied_weights_keys = None``;
# this is the documented way to write a generating model
class AnatAttnForReportGeneration(PreTrainedModel, GenerationMixin):  # type: ignore[misc]
    config_class = AnatAttnConfig
    base_model_prefix = "anat_attn"
    main_input_name = "input_ids"
    _tied_weights_keys = ["lm_head.weight"]  # type: ignore[assignment]
    _no_split_modules = ["GPT2Block", "DINOv3ViTLayer"]
    _supports_sdpa = True

    def __init__(self, config: AnatAttnConfig) -> None:
        super().__init__(config)
        self.vision_encoder = DINOv3ViTModel(config.vision_config)
        self.adapter = build_adapter(config)
        config.text_config._attn_implementation = IMPLEMENTATION_NAMES[config.attention_backend]
        self.decoder = GPT2Model(config.text_config)
        # GPT2Model's own init re-checks the implementation; pin ours on the config its blocks read
        self.decoder.config._attn_implementation = IMPLEMENTATION_NAMES[config.attention_backend]
        self.lm_head = nn.Linear(config.text_config.n_embd, config.text_config.vocab_size, bias=False)
        self.vision_encoder.requires_grad_(False)
        self.post_init()

    # ---- plumbing transformers expects ----
    def _init_weights(self, module: nn.Module) -> None:
        # only the adapter and lm_head reach here: the encoder and decoder init themselves
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, self.config.text_config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()

    def get_input_embeddings(self) -> nn.Module:
        return self.decoder.wte

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.decoder.wte = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def train(self, mode: bool = True) -> AnatAttnForReportGeneration:
        """The encoder stays in eval mode: it is frozen, as in the paper."""
        super().train(mode)
        self.vision_encoder.eval()
        return self

    @property
    def anatomical_spec(self) -> AnatomicalSpec:
        c = self.config
        return AnatomicalSpec(mode=c.attention_mode, strength=c.attention_strength, rows=c.bias_rows, grid=c.grid_size,
                              decode_bias=c.decode_bias, train_bias=c.train_bias)

    @property
    def needs_masks(self) -> bool:
        return self.config.attention_mode != "none"

    # ---- image side ----
    @torch.no_grad()
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, N, D_vision) patch features of the frozen encoder (no CLS; registers only when
        ``prefix_tokens_to_skip`` keeps them, as lana_radgen does)."""
        dtype = self.vision_encoder.embeddings.patch_embeddings.weight.dtype
        hidden = self.vision_encoder(pixel_values=pixel_values.to(dtype)).last_hidden_state
        patches = hidden[:, self.config.tokens_to_skip :]
        if patches.shape[1] != self.config.num_prefix_tokens:
            raise ValueError(
                f"encoder returned {patches.shape[1]} patch tokens after skipping {self.config.tokens_to_skip}, "
                f"expected {self.config.num_prefix_tokens} for {self.config.image_size} px / patch "
                f"{self.config.patch_size}; check image_size and prefix_tokens_to_skip"
            )
        return patches

    def image_prefix(
        self, pixel_values: torch.Tensor | None = None, image_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, N, D_text): projected patch features. ``image_features`` skips the encoder (training cache)."""
        if image_features is None:
            if pixel_values is None:
                raise ValueError("pass pixel_values or image_features")
            image_features = self.encode_images(pixel_values)
        return self.adapter(image_features.to(next(self.adapter.parameters()).dtype))

    def layer_maps(self, grid_masks: torch.Tensor) -> torch.Tensor:
        """(B, G, G) prior -> (B, L, G, G) per-layer maps (G = ``config.prior_grid``)."""
        if grid_masks.shape[-1] != self.config.prior_grid:
            raise ValueError(f"grid masks are {tuple(grid_masks.shape)}, model grid is {self.config.prior_grid}")
        return layer_stack(grid_masks, self.config.num_decoder_layers)

    # ---- forward ----
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: Any = None,
        position_ids: torch.LongTensor | None = None,
        cache_position: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        grid_masks: torch.Tensor | None = None,
        anatomical_maps: torch.Tensor | None = None,
        anatomical_phase: str = "teacher_forcing",
        anatomical_length: int | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Two uses. Teacher forcing: ``pixel_values`` or ``image_features`` (+ ``input_ids``,
        ``attention_mask``, ``labels`` for the report tokens only) builds ``[prefix ; text]``.
        Decoding steps from ``generate``: ``inputs_embeds`` / ``input_ids`` with the KV cache.
        Anatomy: ``grid_masks`` (B, G, G) or precomputed ``anatomical_maps`` (B, L, G, G); ``anatomical_phase``
        ("generate" from ``generate_reports``) lets the config's ``decode_bias`` / ``train_bias`` decide;
        ``anatomical_length`` is the sequence a ``sequence`` bias is built for (generation: prompt + new tokens)."""
        if pixel_values is not None or image_features is not None:
            prefix = self.image_prefix(pixel_values, image_features)
            b, n, _ = prefix.shape
            parts = [prefix] if input_ids is None else [prefix, self.decoder.wte(input_ids)]
            inputs_embeds = torch.cat(parts, dim=1)
            image_ones = torch.ones(b, n, dtype=torch.long, device=prefix.device)
            if attention_mask is not None:
                attention_mask = torch.cat([image_ones, attention_mask.to(torch.long)], dim=1)
            elif input_ids is not None:
                attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=prefix.device)
            else:
                attention_mask = image_ones
            if labels is not None:
                ignored = torch.full((b, n), IGNORE_INDEX, dtype=labels.dtype, device=labels.device)
                labels = torch.cat([ignored, labels], 1)
            input_ids = None
        if inputs_embeds is not None and inputs_embeds.shape[1] > self.config.text_config.n_positions:
            raise ValueError(
                f"sequence of {inputs_embeds.shape[1]} tokens exceeds the "
                f"{self.config.text_config.n_positions} positions"
            )
        if anatomical_maps is None and grid_masks is not None and self.needs_masks:
            anatomical_maps = self.layer_maps(grid_masks)
        if self.needs_masks and anatomical_maps is None:
            raise ValueError(
                f"this model uses anatomical attention (attention_mode={self.config.attention_mode!r}); "
                "pass grid_masks or anatomical_maps"
            )
        extra: dict[str, Any] = ({"anatomical_maps": anatomical_maps, "anatomical_spec": self.anatomical_spec,
                                  "anatomical_phase": anatomical_phase} if self.needs_masks else {})
        if self.needs_masks and anatomical_length is not None:
            extra["anatomical_length"] = anatomical_length
        outputs = self.decoder(
            input_ids=input_ids,
            past_key_values=past_key_values,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            cache_position=cache_position,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **extra,
        )
        hidden = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, keep])
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1).to(logits.device),
                ignore_index=IGNORE_INDEX,
            )
        return CausalLMOutputWithPast(
            loss=loss,  # type: ignore[arg-type]  # transformers annotates FloatTensor; torch returns Tensor
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    # ---- generation ----
    @torch.no_grad()
    def generate_reports(
        self,
        pixel_values: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        grid_masks: torch.Tensor | None = None,
        max_new_tokens: int = 150,
        num_beams: int = 1,
        repetition_penalty: float = 1.2,
        **generate_kwargs: Any,
    ) -> torch.LongTensor:
        """Token ids of the generated reports (prompt excluded). Greedy by default (paper: greedy,
        repetition penalty 1.2, 150 new tokens); every prompt is exactly the N image tokens (+ BOS with
        ``start_with_bos``), so a batch needs no padding and each study's output does not depend on its batch
        mates. ``suppress_eos`` (lana_radgen) forbids EOS, so every report has ``max_new_tokens`` tokens."""
        prefix = self.image_prefix(pixel_values, image_features)
        if self.config.start_with_bos:
            bos_id = self.config.bos_token_id if self.config.bos_token_id is not None else self.config.eos_token_id
            if bos_id is None:
                raise ValueError("start_with_bos needs a bos_token_id (or eos_token_id) in the config")
            bos = torch.full((prefix.shape[0], 1), bos_id, dtype=torch.long, device=prefix.device)
            prefix = torch.cat([prefix, self.decoder.wte(bos).to(prefix.dtype)], dim=1)
        b, n, _ = prefix.shape
        new_tokens = min(max_new_tokens, self.config.max_text_tokens)
        kwargs: dict[str, Any] = {}
        if self.needs_masks:
            if grid_masks is None:
                raise ValueError(f"attention_mode={self.config.attention_mode!r} needs grid_masks")
            kwargs["anatomical_maps"] = self.layer_maps(grid_masks.to(prefix.device))
            kwargs["anatomical_phase"] = "generate"
            if self.config.bias_rows == "sequence":  # the authors build it for prompt + max_new_tokens
                kwargs["anatomical_length"] = n + new_tokens
        eos = self.config.eos_token_id
        pad = self.config.pad_token_id if self.config.pad_token_id is not None else eos
        options: dict[str, Any] = dict(
            max_new_tokens=new_tokens,
            num_beams=num_beams,
            do_sample=False,
            repetition_penalty=repetition_penalty,
            eos_token_id=eos,
            pad_token_id=pad,
            use_cache=True,
        )
        if self.config.suppress_eos:  # modeling_lana.py@a017e7b ``generate``: no EOS id, EOS suppressed
            options.update(eos_token_id=None, suppress_tokens=[eos])
        options.update(generate_kwargs)
        ids = self.generate(
            inputs_embeds=prefix,
            attention_mask=torch.ones(b, n, dtype=torch.long, device=prefix.device),
            **kwargs,
            **options,
        )
        return cast(torch.LongTensor, ids)  # the ids themselves: nothing here asks for a dict output

    # ---- construction from pretrained parts ----
    @classmethod
    def assemble(
        cls,
        vision: DINOv3ViTModel,
        language_model: GPT2LMHeadModel,
        *,
        image_size: int = 512,
        text_positions: int | None = None,
        **config_kwargs: Any,
    ) -> AnatAttnForReportGeneration:
        """Wire a DINOv3 encoder and a GPT-2 LM: the position table is interpolated from its
        ``n_positions`` to N image tokens + ``text_positions`` (default: the original length, i.e.
        1024 -> 2048 for GPT-2 at 512 px, as the authors do)."""
        old_positions = int(language_model.config.n_positions)
        text_positions = text_positions or old_positions
        num_image_tokens = (image_size // vision.config.patch_size) ** 2
        new_positions = num_image_tokens + text_positions
        text_config = GPT2Config.from_dict(language_model.config.to_dict())
        text_config.n_positions = new_positions
        config = AnatAttnConfig(
            vision_config=vision.config.to_dict(),
            text_config=text_config.to_dict(),
            image_size=image_size,
            **config_kwargs,
        )
        model = cls(config)
        model.vision_encoder.load_state_dict(vision.state_dict())
        state = {
            k[len("transformer.") :]: v
            for k, v in language_model.state_dict().items()
            if k.startswith("transformer.")
        }
        state["wpe.weight"] = interpolate_positions(state["wpe.weight"], new_positions)
        model.decoder.load_state_dict(state)
        model.lm_head.weight.data.copy_(language_model.lm_head.weight.data)
        model.tie_weights()
        return model

    @classmethod
    def from_components(
        cls,
        vision_model: str,
        decoder_model: str,
        *,
        vision_revision: str | None = None,
        decoder_revision: str | None = None,
        image_size: int = 512,
        text_positions: int | None = None,
        **config_kwargs: Any,
    ) -> AnatAttnForReportGeneration:
        """The paper's starting point: pretrained DINOv3 + GPT-2 (local dirs or hub ids at a revision; the
        paper's are ``presets.DEFAULT_VISION_MODEL`` and ``DEFAULT_DECODER_MODEL``)."""
        vision = DINOv3ViTModel.from_pretrained(vision_model, revision=vision_revision)
        language_model = GPT2LMHeadModel.from_pretrained(decoder_model, revision=decoder_revision)
        return cls.assemble(
            vision, language_model, image_size=image_size, text_positions=text_positions, **config_kwargs
        )
