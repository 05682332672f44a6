"""Hugging Face Trainer on the onet backend: a tiny BERT built from a local
config (no download) on synthetic data.

    torchrun --nproc_per_node 2 hf_trainer.py

The one rule: call init_process_group("onet") before creating the Trainer
(TrainingArguments' ddp_backend knows only its own list of names; Trainer
and Accelerate use a process group that is already initialized). Needs
transformers (and accelerate, as recent transformers versions do).
"""

import datetime
import os
import tempfile

import torch
import torch.distributed as dist

import opennetworks  # noqa: F401  (registers the "onet" backend)


class Synthetic(torch.utils.data.Dataset):
    """Token sequences whose label is whether token 7 occurs in them."""

    def __init__(self, n, seq=16, vocab=64, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(8, vocab, (n, seq), generator=g)
        flip = torch.rand(n, generator=g) < 0.5
        self.ids[flip, 3] = 7
        self.labels = flip.long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def main():
    dist.init_process_group("onet", timeout=datetime.timedelta(minutes=5))  # before the Trainer
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    out = os.environ.get("HF_OUT") or tempfile.mkdtemp(prefix="onet-hf-")
    kw = dict(output_dir=out, per_device_train_batch_size=16, max_steps=int(os.environ.get("HF_STEPS", "30")),
              learning_rate=1e-3, logging_steps=10, report_to=[], save_strategy="no", seed=0,
              dataloader_num_workers=0)
    args = TrainingArguments(**kw)
    trainer = Trainer(model=model, args=args, train_dataset=Synthetic(512))
    res = trainer.train()
    if dist.get_rank() == 0:
        pg = dist.distributed_c10d._get_default_group()
        print("HF Trainer on backend %s (%s): %d ranks, train_loss %.4f, %d steps"
              % (dist.get_backend(), type(pg).__name__, dist.get_world_size(), res.training_loss, res.global_step))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
