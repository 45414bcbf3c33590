"""GREEN's generation backends (import torch / vllm): the judge LLM writes its analysis for each
prompt. ``transformers``: RadEval's ``GREEN.get_response`` (left-padded batches, greedy,
``max_length`` counting prompt and answer); ``vllm``: the same greedy decoding through vLLM
when it is installed (not available on this project's CPU machines, so untested here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import BatchEncoding

from rrg_bench.metrics.green.parse import chat_text, clean_response


class TransformersJudge:
    def __init__(self, model_dir: Path, device: str = "cpu", trust_remote_code: bool = True) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        on_gpu = device.startswith("cuda")
        # RadEval: float16 on GPU, float32 on CPU; remote code trusted (the repo ships its tokenizer class)
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), torch_dtype=torch.float16 if on_gpu else torch.float32,
            trust_remote_code=trust_remote_code)
        # transformers decorates ``to`` with functools.wraps(nn.Module.to); typeshed then types the
        # bound call as the unbound one (first argument ``self``)
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), add_eos_token=True, use_fast=True,
                                                       padding_side="left", trust_remote_code=trust_remote_code)
        self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.clean_up_tokenization_spaces = True

    def encode(self, prompts: Sequence[str], max_length: int) -> BatchEncoding:
        texts = [chat_text(p, self.tokenizer.eos_token) for p in prompts]
        return self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)

    @torch.inference_mode()
    def respond(self, prompts: Sequence[str], *, batch_size: int, max_length: int,
                advance: Callable[[int], Any] | None = None) -> list[str]:
        out: list[str] = []
        for b in range(0, len(prompts), max(1, batch_size)):
            enc = self.encode(prompts[b:b + max(1, batch_size)], max_length).to(self.device)
            generated = self.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                            eos_token_id=self.tokenizer.eos_token_id,
                                            pad_token_id=self.tokenizer.pad_token_id, max_length=max_length,
                                            do_sample=False)
            out.extend(clean_response(t) for t in self.tokenizer.batch_decode(generated, skip_special_tokens=True))
            if advance is not None:
                advance(len(enc["input_ids"]))
        return out


class VLLMJudge:
    """Greedy decoding with vLLM on the same token ids (prompt + answer capped at ``max_length``)."""

    def __init__(self, model_dir: Path, device: str = "cuda", trust_remote_code: bool = True) -> None:
        from transformers import AutoTokenizer
        from vllm import LLM

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), add_eos_token=True, use_fast=True,
                                                       padding_side="left", trust_remote_code=trust_remote_code)
        self.llm = LLM(model=str(model_dir), dtype="float16", tokenizer=str(model_dir),
                       trust_remote_code=trust_remote_code)

    def respond(self, prompts: Sequence[str], *, batch_size: int, max_length: int,
                advance: Callable[[int], Any] | None = None) -> list[str]:
        from vllm import SamplingParams

        eos = self.tokenizer.eos_token
        ids = [self.tokenizer(chat_text(p, eos), truncation=True, max_length=max_length)["input_ids"]
               for p in prompts]
        params = [SamplingParams(temperature=0.0, max_tokens=max(1, max_length - len(i)), skip_special_tokens=True)
                  for i in ids]
        results = self.llm.generate([{"prompt_token_ids": i} for i in ids], params)
        texts = [self.tokenizer.decode(i, skip_special_tokens=True) + r.outputs[0].text for i, r in zip(ids, results)]
        if advance is not None:
            advance(len(prompts))
        return [clean_response(t) for t in texts]
