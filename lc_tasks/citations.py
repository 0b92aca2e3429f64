"""The papers lc-eval's tasks come from, and the datasets its QA tasks read: one table.

The family READMEs (``scripts/gen_task_configs.py``) and the README of the upstream folder
both cite from here.

>>> paper_of("passkey").title.startswith("Landmark Attention")
True
>>> paper_of("niah") is RULER  # every RULER family cites RULER
True
>>> DATASETS["squad"].splitlines()[0]
'@inproceedings{rajpurkar2018know,'
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["DATASETS", "PAPERS", "Paper", "paper_of"]


@dataclass(frozen=True)
class Paper:
    """A paper a family reproduces: what its README shows, and its BibTeX entry."""

    title: str
    abstract: str  # the arXiv abstract page
    homepage: str  # the paper's code
    summary: str  # one paragraph on what it found
    bibtex: str


RULER = Paper(
    title="RULER: What's the Real Context Size of Your Long-Context Language Models?",
    abstract="https://arxiv.org/abs/2404.06654",
    homepage="https://github.com/NVIDIA/RULER",
    summary=(
        "RULER extends needle-in-a-haystack with varied needle types and counts, and adds "
        "multi-hop tracing and aggregation tasks, all synthetic and generated at any length."
    ),
    bibtex="""@article{hsieh2024ruler,
  title={RULER: What's the Real Context Size of Your Long-Context Language Models?},
  author={Hsieh, Cheng-Ping and Sun, Simeng and Kriman, Samuel and Acharya, Shantanu and
          Rekesh, Dima and Jia, Fei and Zhang, Yang and Ginsburg, Boris},
  journal={arXiv preprint arXiv:2404.06654},
  year={2024}
}""",
)
LANDMARK = Paper(
    title="Landmark Attention: Random-Access Infinite Context Length for Transformers",
    abstract="https://arxiv.org/abs/2305.16300",
    homepage="https://github.com/epfml/landmark-attention",
    summary=(
        "The passkey retrieval test: a 5-digit key hidden in repeated filler text must be "
        "recalled at the end of the prompt."
    ),
    bibtex="""@article{mohtashami2023landmark,
  title={Landmark Attention: Random-Access Infinite Context Length for Transformers},
  author={Mohtashami, Amirkeivan and Jaggi, Martin},
  journal={arXiv preprint arXiv:2305.16300},
  year={2023}
}""",
)
ZOOLOGY = Paper(
    title="Zoology: Measuring and Improving Recall in Efficient Language Models",
    abstract="https://arxiv.org/abs/2312.04927",
    homepage="https://github.com/HazyResearch/zoology",
    summary=(
        "Multi-query associative recall (MQAR): key-value pairs in context, several keys asked;"
        " the number of pairs a fixed-size recurrent state can recall grows with its size, "
        "while attention's does not depend on it."
    ),
    bibtex="""@article{arora2023zoology,
  title={Zoology: Measuring and Improving Recall in Efficient Language Models},
  author={Arora, Simran and Eyuboglu, Sabri and Timalsina, Aman and Johnson, Isys and
          Poli, Michael and Zou, James and Rudra, Atri and R{'e}, Christopher},
  journal={arXiv preprint arXiv:2312.04927},
  year={2023}
}""",
)
STUFFED_MAMBA = Paper(
    title="Stuffed Mamba: Oversized States Lead to the Inability to Forget",
    abstract="https://arxiv.org/abs/2410.07145",
    homepage="https://github.com/THUNLP/stuffed-mamba",
    summary=(
        "Recurrent models trained on contexts short for their state size do not learn to "
        "forget: past the training length their loss by position turns up and retrieval fails "
        '(first titled "State Collapse and State Capacity of RNN-Based Long-Context Modeling").'
    ),
    bibtex="""@article{chen2024stuffed,
  title={Stuffed Mamba: Oversized States Lead to the Inability to Forget},
  author={Chen, Yingfa and Zhang, Xinrong and Hu, Shengding and Han, Xu and Liu, Zhiyuan
          and Sun, Maosong},
  journal={arXiv preprint arXiv:2410.07145},
  year={2024}
}""",
)
REPEAT_AFTER_ME = Paper(
    title="Repeat After Me: Transformers are Better than State Space Models at Copying",
    abstract="https://arxiv.org/abs/2402.01032",
    homepage="https://github.com/sjelassi/transformers_ssm_copy",
    summary=(
        "Copying a long span of random text needs memory that grows with the span: a two-layer "
        "transformer copies strings of exponential length, a fixed-size state space model "
        "cannot, and pretrained transformers beat larger SSMs at copying and retrieving from "
        "context."
    ),
    bibtex="""@article{jelassi2024repeat,
  title={Repeat After Me: Transformers are Better than State Space Models at Copying},
  author={Jelassi, Samy and Brandfonbrener, David and Kakade, Sham M. and Malach, Eran},
  journal={arXiv preprint arXiv:2402.01032},
  year={2024}
}""",
)
NOLIMA = Paper(
    title="NoLiMa: Long-Context Evaluation Beyond Literal Matching",
    abstract="https://arxiv.org/abs/2502.05167",
    homepage="https://github.com/adobe-research/NoLiMa",
    summary=(
        "Needle-in-a-haystack where the question shares no word with the needle; one "
        "association of general knowledge links them. Models that ace literal retrieval fall "
        "steeply with length once string matching is taken away."
    ),
    bibtex="""@article{modarressi2025nolima,
  title={NoLiMa: Long-Context Evaluation Beyond Literal Matching},
  author={Modarressi, Ali and Deilamsalehy, Hanieh and Dernoncourt, Franck and Bui, Trung
          and Rossi, Ryan A. and Yoon, Seunghyun and Sch{"u}tze, Hinrich},
  journal={arXiv preprint arXiv:2502.05167},
  year={2025}
}""",
)
ILLUSION = Paper(
    title="The Illusion of State in State-Space Models",
    abstract="https://arxiv.org/abs/2404.08819",
    homepage="https://github.com/jopetty/word-problem",
    summary=(
        "Composing permutations (the word problem of S5, e.g. swaps of five boxes' contents) "
        "cannot be done by diagonal SSMs or by transformers of fixed depth at every length; "
        "linear RNNs with negative eigenvalues or non-diagonal transitions (Grazzi et al. 2025;"
        " DeltaNet, RWKV-7) can."
    ),
    bibtex="""@article{merrill2024illusion,
  title={The Illusion of State in State-Space Models},
  author={Merrill, William and Petty, Jackson and Sabharwal, Ashish},
  journal={arXiv preprint arXiv:2404.08819},
  year={2024}
}""",
)
# The RULER families cite RULER; the others cite the paper whose test they reproduce.
PAPERS = MappingProxyType(
    {
        "passkey": LANDMARK,
        "kvrecall": ZOOLOGY,
        "ppl": STUFFED_MAMBA,
        "copy": REPEAT_AFTER_ME,
        "latent": NOLIMA,
        "statetrack": ILLUSION,
    }
)
# The QA families' data sets (their ``params["dataset"]``), as BibTeX entries.
DATASETS = MappingProxyType(
    {
        "squad": """@inproceedings{rajpurkar2018know,
  title={Know What You Don't Know: Unanswerable Questions for {SQuAD}},
  author={Rajpurkar, Pranav and Jia, Robin and Liang, Percy},
  booktitle={Proceedings of the 56th Annual Meeting of the Association for Computational
             Linguistics (Volume 2: Short Papers)},
  pages={784--789},
  year={2018}
}""",
        "hotpotqa": """@inproceedings{yang2018hotpotqa,
  title={{HotpotQA}: A Dataset for Diverse, Explainable Multi-hop Question Answering},
  author={Yang, Zhilin and Qi, Peng and Zhang, Saizheng and Bengio, Yoshua and
          Cohen, William W. and Salakhutdinov, Ruslan and Manning, Christopher D.},
  booktitle={Proceedings of the 2018 Conference on Empirical Methods in Natural Language
             Processing},
  pages={2369--2380},
  year={2018}
}""",
    }
)


def paper_of(kind: str) -> Paper:
    """The paper a family of generator ``kind`` cites (RULER unless listed in ``PAPERS``)."""
    return PAPERS.get(kind, RULER)
