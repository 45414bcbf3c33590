"""Tiny random models of the real classes behind the RadEval-family metrics, built offline:
tokenizers are trained here on a few radiology sentences (no Hub), weights are seeded.

RaTEScore: ``DebertaV2ForTokenClassification`` (RaTE-NER's 11 BIO labels) with a Unigram
``DebertaV2TokenizerFast`` ([CLS]/[SEP] literal tokens like the real one) and ``MPNetModel``
with a WordPiece ``MPNetTokenizerFast`` (BioLORD-2023-C's classes).
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "No acute cardiopulmonary process.",
    "Mild cardiomegaly with small bilateral pleural effusions and basilar atelectasis.",
    "Left PICC tip appears to terminate in the distal left brachiocephalic vein.",
    "Mild pulmonary vascular congestion.",
    "No definite acute cardiopulmonary process.",
    "Enlarged cardiac silhouette could be accentuated by patient's positioning.",
    "Increased mild pulmonary edema and left basal atelectasis.",
    "Mildly enlarged cardiac silhouette with small pleural effusions and dependent bibasilar atelectasis.",
    "Relatively lower lung volumes with no focal airspace consolidation appreciated.",
    "Crowding of the pulmonary vasculature with possible minimal perihilar edema, but no overt pulmonary edema.",
    "No pleural effusions or pneumothoraces.",
    "The heart size is normal. The lungs are clear. There is no pneumothorax.",
    "Stable chest findings, no evidence of new acute infiltrates.",
    "Interval improvement in aeration of the lung bases with residual streaky opacity.",
    "Interval resolution of the left pleural effusion. Worsening right lower lobe opacity.",
    "Status post median sternotomy for CABG with stable cardiac enlargement.",
]
RATE_LABELS = ["B-ABNORMALITY", "I-ABNORMALITY", "B-NON-ABNORMALITY", "I-NON-ABNORMALITY", "B-DISEASE",
               "I-DISEASE", "B-NON-DISEASE", "I-NON-DISEASE", "B-ANATOMY", "I-ANATOMY", "O"]


def _words() -> list[str]:
    import re

    return sorted({w for s in CORPUS for w in re.findall(r"\w+|[^\w\s]", s.lower())})


def build_rate_ner(directory: Path, seed: int = 0) -> Path:
    """A DeBERTa-v2 token classifier with RaTE-NER's label set and a Unigram tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import DebertaV2Config, DebertaV2ForTokenClassification, DebertaV2TokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(CORPUS * 4, trainers.UnigramTrainer(vocab_size=160, special_tokens=specials,
                                                                 unk_token="[UNK]", show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = DebertaV2TokenizerFast(tokenizer_object=tok, bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]",
                                  sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                                  model_max_length=512)
    torch.manual_seed(seed)
    config = DebertaV2Config(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=128, relative_attention=True,
                             position_buckets=16, pos_att_type=["p2c", "c2p"], pad_token_id=fast.pad_token_id,
                             id2label=dict(enumerate(RATE_LABELS)), label2id={l: i for i, l in enumerate(RATE_LABELS)})
    model = DebertaV2ForTokenClassification(config).eval()
    with torch.no_grad():  # random logits are near-ties; spread them so entities of every kind appear
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    return directory


def build_mpnet(directory: Path, seed: int = 0) -> Path:
    """An MPNet encoder with a WordPiece vocabulary of the corpus words."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>", *_words()]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    fast = MPNetTokenizerFast(vocab_file=str(directory / "vocab.txt"), model_max_length=512)
    torch.manual_seed(seed)
    config = MPNetConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=130, pad_token_id=fast.pad_token_id)
    MPNetModel(config).eval().save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    return directory


def _bpe_fast(directory: Path, specials: list[str], post: str | None, vocab_size: int, extra: list[str] = ()):
    """A byte-level BPE ``tokenizers`` model trained on the corpus (and ``extra`` texts)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([*CORPUS, *extra] * 2, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    if post is not None:
        cls, sep = post.split()
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    return tok


def build_modernbert(directory: Path, seed: int = 0, layers: int = 3) -> Path:
    """A ModernBertModel (RadEvalModernBERT's class) with a fast BPE tokenizer ([CLS] x [SEP])."""
    import torch
    from transformers import ModernBertConfig, ModernBertModel, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok = _bpe_fast(directory, specials, "[CLS] [SEP]", 400)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                                   unk_token="[UNK]", mask_token="[MASK]", model_max_length=512)
    torch.manual_seed(seed)
    config = ModernBertConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
                              num_attention_heads=2, max_position_embeddings=512, pad_token_id=fast.pad_token_id,
                              cls_token_id=fast.cls_token_id, sep_token_id=fast.sep_token_id,
                              bos_token_id=fast.cls_token_id, eos_token_id=fast.sep_token_id,
                              global_attn_every_n_layers=2, local_attention=16, attn_implementation="eager")
    ModernBertModel(config).eval().save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    return directory


def build_srr_bert(model_dir: Path, tokenizer_dir: Path, seed: int = 0, num_labels: int = 163) -> tuple[Path, Path]:
    """A BertForSequenceClassification with SRR-BERT's 163 outputs and a WordPiece BertTokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_words()]
    (tokenizer_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(tokenizer_dir / "vocab.txt"), do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=num_labels,
                        problem_type="multi_label_classification", initializer_range=0.6)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():  # labels on and off in roughly equal numbers, and flipping between sentences
        model.classifier.weight.mul_(5.0)
        model.classifier.bias.zero_()
    model.save_pretrained(str(model_dir))
    return model_dir, tokenizer_dir


def build_punkt(root: Path) -> Path:
    """A punkt_tab/english parameter set (the real one is NLTK data we may not download): a few
    abbreviations, enough to exercise the splitter. Returns the folder to put on NLTK's path."""
    lang = root / "tokenizers" / "punkt_tab" / "english"
    lang.mkdir(parents=True, exist_ok=True)
    (lang / "abbrev_types.txt").write_text("dr\ne.g\ni.e\nvs\napprox\n")
    (lang / "collocations.tab").write_text("")
    (lang / "sent_starters.txt").write_text("however\nthere\n")
    (lang / "ortho_context.tab").write_text("")
    return root


def build_llama(directory: Path, seed: int = 0, prompt_texts: tuple[str, ...] = ()) -> Path:
    """A LlamaForCausalLM (GREEN-RadLlama2's class) with a Llama-style fast tokenizer: BPE over
    "▁"-marked text with byte fallback and Llama's decoder (<s>, </s>, <unk>), trained on the corpus
    and the GREEN prompt so prompts stay a few hundred tokens long."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    chat = "<|user|>\n <|assistant|>\n <|system|>\n"  # the chat markers, so no text needs byte fallback
    words = [w for t in [*CORPUS, *prompt_texts, chat] for w in t.split(" ")]
    tok.train_from_iterator(words * 2, trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"],
                                                          show_progress=False))
    # "<s> text </s>", what transformers 4.x's LlamaTokenizerFast(add_eos_token=True) produces, baked into
    # a plain fast tokenizer: v5's Llama class rebuilds that template (and drops "<s>"), and the real
    # GREEN tokenizer is the repository's own class anyway, so the double stays version-neutral
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=4096)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).eval().save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    cfg_path = directory / "tokenizer_config.json"  # Llama's flags, which v5 reads to rebuild the template
    cfg = json.loads(cfg_path.read_text())
    cfg.update(add_bos_token=True, add_eos_token=False)
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    return directory


#: stands in for stanza's en/radiology NER (a downloaded model) in the temporal F1 tests and in
#: the recording of RadEval's outputs: every run of letters is an entity, its type cycling with
#: its length, so keywords come out as OBSERVATION, OBSERVATION_MODIFIER or ANATOMY
_FAKE_TYPES = ("OBSERVATION", "OBSERVATION_MODIFIER", "ANATOMY")


def fake_stanza_entities(text: str) -> list[tuple[str, str]]:
    import re

    return [(m.group(), _FAKE_TYPES[len(m.group()) % 3]) for m in re.finditer(r"[A-Za-z]+", text)]
