"""A GGUF checkpoint with every quantized tensor dequantized to float32, metadata unchanged.

    python benchmarks/gguf_f32.py SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-f32.gguf

llama.cpp multiplies a quantized GGUF's weights with activations quantized too (Q4_1 weights
against Q8_1 activations), while ``lc_hf`` (through transformers) dequantizes the weights and
computes in float32. Served from this file, llama.cpp computes in float32 on the very same
weight values, so the two differ by float rounding alone: ``bench_served.py --model <file>`` on
each file separates what the server does to the prompt from what its quantized arithmetic
does to the answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def dequantized(source: Path, target: Path) -> Path:
    """Write ``target``: ``source`` with its quantized tensors in float32."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind = field.types[0]
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(gguf.LlamaFileType.ALL_F32)
        writer.add_key_value(field.name, value, kind,
                             sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY
                             else None)
    for tensor in reader.tensors:
        # (rows, columns) in numpy order: the reverse of GGUF's ne
        shape = tuple(int(n) for n in reversed(tensor.shape))
        data = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        writer.add_tensor(tensor.name, data.reshape(shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


if __name__ == "__main__":
    print(dequantized(Path(sys.argv[1]), Path(sys.argv[2])))
