"""knn_image: nearest train image -> its report, with the pixel encoder and a tiny HF ViT.

Images are small synthetic PNGs of three pattern families (horizontal stripes, vertical
stripes, a disc) with per-image noise, so "the right neighbour" is known by construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrg_bench.api.generator import GeneratorContext, study_seed
from rrg_bench.api.types import Study
from rrg_bench.baselines.knn_image.encoders import PixelEncoder
from rrg_bench.baselines.knn_image.generate import KnnImage, vote
from rrg_bench.errors import DataError, UsageError, WeightsUnavailable

KINDS = ("hstripes", "vstripes", "disc")


def pattern(kind: str, variant: int, size: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    if kind == "hstripes":
        base = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * y + 0.05 * variant)
    elif kind == "vstripes":
        base = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * x + 0.05 * variant)
    else:
        base = (np.hypot(x - 0.5, y - 0.5) < 0.2 + 0.01 * variant).astype(float)
    noise = np.random.default_rng(1000 * KINDS.index(kind) + variant).normal(0, 0.08, base.shape)
    return (np.clip(base + noise, 0, 1) * 255).astype(np.uint8)


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def image_study(root: Path, sid: str, kind: str, variant: int, split: str, text: str | None = None) -> Study:
    path = png(root / sid / "0.png", pattern(kind, variant))
    text = text if text is not None else f"{kind} finding seen in study {sid}."
    return Study(
        study_id=sid,
        split=split,
        reference=text,
        reference_sha256=hashlib.sha256(text.encode()).hexdigest(),
        image_paths=(path,),
        frontal_image=path,
    )


@pytest.fixture
def corpus(tmp_path):
    train = [image_study(tmp_path, f"tr_{k}_{v}", k, v, "train") for k in KINDS for v in range(4)]
    test = [image_study(tmp_path, f"te_{k}_{v}", k, v, "test") for k in KINDS for v in (8, 9)]
    return train, test


def context(train, split="test", **kw) -> GeneratorContext:
    kw.setdefault("batch_size", 4)
    return GeneratorContext(dataset="synthetic", split=split, train_studies=lambda: list(train), progress=False, **kw)


def run(gen, studies, run_seed=0):
    return gen.generate(studies, [study_seed(run_seed, s.study_id) for s in studies])


def kind_of(study_id: str) -> str:
    return study_id.split("_")[1]


# ---------------------------------------------------------------- pixel encoder


def test_pixel_knn_retrieves_a_study_of_the_same_pattern(corpus):
    train, test = corpus
    gen = KnnImage()
    gen.setup(context(train))
    out = run(gen, test)
    texts = {s.study_id: s.reference for s in train}
    assert [g.study_id for g in out] == [s.study_id for s in test]
    for g in out:
        assert g.text == texts[g.meta["retrieved_from"]]
        assert kind_of(g.meta["retrieved_from"]) == kind_of(g.study_id)


def test_a_copy_of_a_train_image_retrieves_that_study(corpus, tmp_path):
    train, _ = corpus
    copy = tmp_path / "query" / "0.png"
    copy.parent.mkdir()
    shutil.copy(train[6].frontal_image, copy)
    query = Study("q", "test", "r", "0" * 64, image_paths=(copy,), frontal_image=copy)
    gen = KnnImage()
    gen.setup(context(train))
    assert run(gen, [query])[0].meta["retrieved_from"] == train[6].study_id


def test_evaluated_study_is_never_its_own_neighbour(corpus):
    train, _ = corpus
    gen = KnnImage()
    gen.setup(context(train, split="train"))
    for g in run(gen, train):
        assert g.meta["retrieved_from"] != g.study_id
        assert kind_of(g.meta["retrieved_from"]) == kind_of(g.study_id)


def test_batching_and_resume_do_not_change_outputs(corpus):
    train, test = corpus
    whole = KnnImage()
    whole.setup(context(train, batch_size=64))
    pieces = KnnImage()
    pieces.setup(context(train, batch_size=1))
    assert run(whole, test) == run(pieces, test[:3]) + run(pieces, test[3:])


def test_k_neighbours_vote_on_the_report_text(tmp_path):
    base = pattern("disc", 0)

    def noisy(seed):
        jitter = np.random.default_rng(seed).normal(0, 12, base.shape)
        return np.clip(base + jitter, 0, 255).astype(np.uint8)

    def make(sid, array, text, split="train"):
        path = png(tmp_path / sid / "0.png", array)
        return Study(sid, split, text, hashlib.sha256(text.encode()).hexdigest(), (path,), path)

    exact = make("a_exact", base, "report x.")
    near1 = make("b_near", noisy(1), "report y.")
    near2 = make("c_near", noisy(2), "report y.")
    far = make("d_far", pattern("hstripes", 0), "report z.")
    query = make("q", base, "reference.", split="test")
    train = [far, near2, exact, near1]

    def answer(k):
        gen = KnnImage(k=k)
        gen.setup(context(train))
        return run(gen, [query])[0]

    assert answer(1).meta["retrieved_from"] == "a_exact"
    assert answer(2).text == "report x."  # 1 vs 1: the better-ranked neighbour wins
    assert answer(3).text == "report y."  # 2 vs 1
    assert answer(3).meta["retrieved_from"] in {"b_near", "c_near"}
    assert answer(50).text == "report y."  # k larger than the index is capped


def test_vote_rule():
    texts = ["x", "y", "y", "z"]
    assert vote([0], texts) == 0
    assert vote([0, 1], texts) == 0
    assert vote([0, 1, 2], texts) == 1
    assert vote([3, 2, 1, 0], texts) == 2


def test_image_choice_frontal_versus_first(corpus, tmp_path):
    train, _ = corpus
    lateral = png(tmp_path / "q" / "0.png", pattern("disc", 9))
    frontal = png(tmp_path / "q" / "1.png", pattern("hstripes", 9))
    query = Study("q", "test", "r", "0" * 64, image_paths=(lateral, frontal), frontal_image=frontal)

    by_frontal, by_first = KnnImage(image="frontal"), KnnImage(image="first")
    by_frontal.setup(context(train))
    by_first.setup(context(train))
    assert kind_of(run(by_frontal, [query])[0].meta["retrieved_from"]) == "hstripes"
    assert kind_of(run(by_first, [query])[0].meta["retrieved_from"]) == "disc"

    no_frontal = Study("nf", "test", "r", "0" * 64, image_paths=(lateral,))
    with pytest.raises(DataError, match="study nf: the manifest names no frontal image.*image=first"):
        run(by_frontal, [no_frontal])


def test_train_studies_without_the_chosen_image_are_left_out_and_counted(corpus):
    train, test = corpus
    headless = Study("tr_none", "train", "x", "0" * 64, image_paths=train[0].image_paths)  # no frontal named
    gen = KnnImage()
    gen.setup(context(train + [headless]))
    assert gen.fingerprint()["train_index"]["n"] == len(train)
    assert gen.fingerprint()["train_index"]["n_skipped_no_image"] == 1
    assert "tr_none" not in {g.meta["retrieved_from"] for g in run(gen, test)}

    with pytest.raises(DataError, match="none of the 1 train studies.*try image=first"):
        KnnImage().setup(context([headless]))


def test_missing_images_name_the_study_and_path(corpus, tmp_path):
    train, test = corpus
    gone = Path(train[3].frontal_image)
    gone.unlink()
    with pytest.raises(DataError, match=f"study {train[3].study_id}: image .*0.png not found"):
        KnnImage().setup(context(train))

    gen = KnnImage()
    gen.setup(context(train[:3] + train[4:]))
    ghost = tmp_path / "ghost" / "0.png"
    query = Study("ghost", "test", "r", "0" * 64, image_paths=(ghost,), frontal_image=ghost)
    with pytest.raises(DataError, match="study ghost: image .*ghost.0.png not found"):
        run(gen, [query])


def test_fingerprint_names_encoder_and_train_index(corpus, tmp_path):
    train, _ = corpus
    a, b = KnnImage(), KnnImage()
    a.setup(context(train))
    b.setup(context(train))
    fp = a.fingerprint()
    assert fp == b.fingerprint()
    assert fp["params"] == {"encoder": "pixel", "revision": None, "image": "frontal", "k": 1}
    assert fp["encoder_identity"] == PixelEncoder().fingerprint()
    assert fp["train_index"]["n"] == len(train)

    # a changed train image or report changes the index hash
    png(Path(train[0].frontal_image), pattern("disc", 3))
    c = KnnImage()
    c.setup(context(train))
    assert c.fingerprint()["train_index"]["sha256"] != fp["train_index"]["sha256"]
    d = KnnImage()
    d.setup(context(train[:1] + [dataclasses.replace(train[1], reference_sha256="f" * 64)] + train[2:]))
    earlier = {fp["train_index"]["sha256"], c.fingerprint()["train_index"]["sha256"]}
    assert d.fingerprint()["train_index"]["sha256"] not in earlier


@pytest.mark.parametrize(
    "params, message",
    [
        ({"k": 0}, "k"),
        ({"image": "lateral"}, "image"),
        ({"neighbours": 3}, "neighbours"),
        ({"encoder": ""}, "encoder"),
    ],
)
def test_bad_parameters_are_usage_errors(params, message):
    with pytest.raises(UsageError, match=message):
        KnnImage(**params)


def test_revision_with_pixel_encoder_is_a_usage_error(corpus):
    with pytest.raises(UsageError, match="revision"):
        KnnImage(revision="abc").setup(context(corpus[0]))


def test_generate_before_setup_is_a_programming_error(corpus):
    with pytest.raises(RuntimeError, match="setup"):
        run(KnnImage(), corpus[1])


# ---------------------------------------------------------------- embedding cache


def test_embeddings_are_cached_by_encoder_and_image_hash(corpus, tmp_path, monkeypatch):
    train, test = corpus
    cache = tmp_path / "cache"
    first = KnnImage()
    first.setup(context(train, cache_dir=cache))
    expected = run(first, test)
    files = sorted(cache.rglob("*.npy"))
    assert len(files) == len(train) + len(test)
    assert all(f.parent.parent.parent.name == "knn_image" for f in files)

    def refuse(self, images):
        raise AssertionError("embedding recomputed although cached")

    monkeypatch.setattr(PixelEncoder, "embed", refuse)
    second = KnnImage()
    second.setup(context(train, cache_dir=cache))
    assert run(second, test) == expected
    assert second.fingerprint() == first.fingerprint()

    # an unreadable entry is recomputed, not trusted
    monkeypatch.undo()
    files[0].write_bytes(b"garbage")
    third = KnnImage()
    third.setup(context(train, cache_dir=cache))
    assert run(third, test) == expected
    assert np.load(files[0]).shape == (64 * 64,)


def test_pixel_encoder_is_a_per_image_zscore_of_a_64px_thumbnail(corpus):
    image = Image.open(corpus[0][0].frontal_image).convert("L")
    row = PixelEncoder().embed([image])[0]
    thumb = np.asarray(image.resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float64) / 255
    expected = (thumb - thumb.mean()) / (thumb.std() + 1e-8)
    np.testing.assert_allclose(row, expected.reshape(-1), rtol=1e-5, atol=1e-5)


def test_index_and_encoder_hashes_are_canonical_json_and_ignore_key_order():
    """knn_image hashes settings with rrg_bench.hashing.sha256_json: the sorted-key compact JSON its
    fingerprints and cache keys were always computed from (so they did not change with the move)."""
    import json

    from rrg_bench.hashing import sha256_json

    obj = {"b": [1, 2], "a": {"é": None}}
    legacy = hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                            .encode("utf-8")).hexdigest()
    assert sha256_json(obj) == legacy == sha256_json({"a": {"é": None}, "b": [1, 2]})


# ---------------------------------------------------------------- Hugging Face encoder (tiny ViT, no download)


def save_tiny_vit(directory: Path, seed: int, pooling: bool = True) -> Path:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=8
    )
    ViTModel(config, add_pooling_layer=pooling).save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return save_tiny_vit(tmp_path_factory.mktemp("vit") / "tiny-vit", seed=0)


def test_hf_encoder_from_local_directory(corpus, tiny_vit, tmp_path):
    train, test = corpus
    gen = KnnImage(encoder=str(tiny_vit))
    gen.setup(context(train, cache_dir=tmp_path / "cache"))
    out = run(gen, test)
    fp = gen.fingerprint()["encoder_identity"]
    assert fp["source"] == "local" and fp["model_class"] == "ViTModel"
    assert fp["pooling"] == "pooler_output"
    assert fp["image_processor"] == "ViTImageProcessor"
    assert fp["files_sha256"] == {
        name: hashlib.sha256((tiny_vit / name).read_bytes()).hexdigest()
        for name in ("config.json", "model.safetensors", "preprocessor_config.json")
    }
    assert str(tiny_vit) not in str(fp)  # a machine-specific path is not part of the identity

    again = KnnImage(encoder=str(tiny_vit))
    again.setup(context(train))  # no cache: recomputed from scratch
    assert run(again, test) == out
    assert again.fingerprint() == gen.fingerprint()

    # the embedding is the model's pooler output on the processor's pixels
    import torch
    from transformers import ViTImageProcessor, ViTModel

    image = Image.open(test[0].frontal_image).convert("RGB")
    pixels = ViTImageProcessor.from_pretrained(tiny_vit)(images=[image], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        expected = ViTModel.from_pretrained(tiny_vit)(pixel_values=pixels).pooler_output[0].numpy()
    np.testing.assert_allclose(again._encoder.embed([image])[0], expected, rtol=1e-5, atol=1e-6)


def test_hf_encoder_retrieves_an_exact_copy(corpus, tiny_vit, tmp_path):
    train, _ = corpus
    copy = png(tmp_path / "q" / "0.png", np.asarray(Image.open(train[7].frontal_image)))
    query = Study("q", "test", "r", "0" * 64, image_paths=(copy,), frontal_image=copy)
    gen = KnnImage(encoder=str(tiny_vit))
    gen.setup(context(train))
    assert run(gen, [query])[0].meta["retrieved_from"] == train[7].study_id


def test_hf_checkpoint_identity_follows_the_weights(corpus, tiny_vit, tmp_path):
    train, _ = corpus
    other = save_tiny_vit(tmp_path / "other-vit", seed=1)
    a, b = KnnImage(encoder=str(tiny_vit)), KnnImage(encoder=str(other))
    a.setup(context(train[:2]))
    b.setup(context(train[:2]))
    identities = [g.fingerprint()["encoder_identity"]["checkpoint_sha256"] for g in (a, b)]
    assert identities[0] != identities[1]


def test_hf_checkpoint_without_pooler_uses_cls_and_is_deterministic(corpus, tmp_path):
    pytest.importorskip("transformers")
    train, test = corpus
    directory = save_tiny_vit(tmp_path / "no-pooler", seed=0, pooling=False)
    outputs = []
    for _ in range(2):  # the missing pooler would be freshly random on every load
        gen = KnnImage(encoder=str(directory))
        gen.setup(context(train))
        assert gen.fingerprint()["encoder_identity"]["pooling"] == "cls"
        image = Image.open(test[0].frontal_image).convert("RGB")
        outputs.append(gen._encoder.embed([image])[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_hf_checkpoint_missing_weights_is_refused(corpus, tiny_vit, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_vit, broken)
    tensors = load_file(broken / "model.safetensors")
    dropped = next(k for k in tensors if "encoder.layer.0" in k)
    del tensors[dropped]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsUnavailable, match="no weights for 1 parameter"):
        KnnImage(encoder=str(broken)).setup(context(corpus[0]))


def test_hub_id_not_available_offline_says_how_to_pass_a_local_path(corpus):
    pytest.importorskip("huggingface_hub")
    with pytest.raises(WeightsUnavailable, match=r"cannot be loaded offline.*encoder=/path/to/dir"):
        KnnImage(encoder="example-org/surely-not-cached-encoder", revision="0" * 40).setup(context(corpus[0]))


def test_local_paths_that_are_not_checkpoints(corpus, tiny_vit, tmp_path):
    with pytest.raises(WeightsUnavailable, match="is not a directory"):
        KnnImage(encoder=str(tmp_path / "nowhere" / "model")).setup(context(corpus[0]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsUnavailable, match="no weight files"):
        KnnImage(encoder=str(empty)).setup(context(corpus[0]))
    with pytest.raises(UsageError, match="revision"):
        KnnImage(encoder=str(tiny_vit), revision="main").setup(context(corpus[0]))


# ---------------------------------------------------------------- shipped demo dataset


def test_knn_image_beats_random_report_on_demo():
    demo = pytest.importorskip("rrg_bench.datasets.demo.dataset")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge

    from rrg_bench.baselines.random_report.generate import RandomReport

    dataset = demo.DemoDataset()
    train, test = dataset.studies("train"), dataset.studies("test")
    references = {s.study_id: [" ".join(s.reference.lower().split())] for s in test}

    def scores(gen) -> tuple[float, float]:
        gen.setup(context(train, batch_size=16))
        hypotheses = {g.study_id: [" ".join(g.text.lower().split())] for g in run(gen, test)}
        bleu4 = Bleu(4).compute_score(references, hypotheses, verbose=0)[0][3]
        rouge_l = Rouge().compute_score(references, hypotheses)[0]
        return bleu4, rouge_l

    knn_bleu4, knn_rouge = scores(KnnImage())
    random_bleu4, random_rouge = scores(RandomReport())
    assert knn_bleu4 > random_bleu4
    assert knn_rouge > random_rouge
