"""The MiniLM graph with each layer's attention and GELU as one onnxruntime operator each.

Why: the packaged ONNX export (torch's dynamo exporter, scaled-dot-product attention) spells each
layer's attention as ~20 small nodes (three projections, reshapes, transposes, a mask built from
ranges, softmax, a NaN guard) and GELU as five. onnxruntime's own optimisers do not recognise that
spelling (neither the session's "extended" level nor `onnxruntime.transformers.optimizer`), so a
question of 16 tokens ran 279 nodes, and on two threads every node is a rendezvous of both. Here
each layer's Q, K and V projections become one `com.microsoft.Attention` node over the three
weight matrices side by side, and `x + b` through GELU one `BiasGelu`: 51 nodes. The arithmetic is
the same (the projections' columns, the 1/sqrt(head size) scale, the key padding mask, erf GELU);
only the order of float additions changes, so vectors move by about 1e-7 (bench/README.md,
"Attention and GELU fused in the cached copy": measured, and what it saves).

The rewrite knows this export by its initializer names (``inner.encoder.layer.N.…``) and checks
every node it relies on; a graph it does not recognise raises `NotFused` and is used as it is.
It works on the graph alone (loaded without its weights): it reads the 18 projection matrices
it packs from the weights file and appends the six packed ones to it, instead of reading and
writing all 90 MB (the originals stay in the file unreferenced, 10.6 MB).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import QabotError

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto, TensorProto

HEADS = 12  # all-MiniLM-L6-v2: 384 dimensions in 12 heads of 32
MICROSOFT = "com.microsoft"
LAYERS = "inner.encoder.layer."
LAYER = LAYERS + "{}."


class NotFused(QabotError):
    """The graph is not the export this rewrite knows; it is left as it was (onnx_session.py
    catches it and runs the graph unfused)."""


def fuse(model: "ModelProto", folder: Path, weights_file: str) -> "ModelProto":
    """`model` (an onnxruntime-optimised copy of the export, its weights in `weights_file` of
    `folder`) with fused attention and GELU in every layer, nodes no output needs dropped; the
    packed weights are appended to that file. Raises `NotFused` when a pattern is missing."""
    from onnx import TensorProto, helper

    graph = model.graph
    nodes = list(graph.node)
    weights = {init.name: init for init in graph.initializer}
    made_by = {output: node for node in nodes for output in node.output}
    layers = sorted({int(name.split(".")[3]) for name in weights if name.startswith(LAYERS)})
    if not layers or "attention_mask" not in {i.name for i in graph.input}:
        raise NotFused("no encoder layers or no attention_mask input")
    fused = [helper.make_node("Cast", ["attention_mask"], ["fused_mask"], to=TensorProto.INT32,
                              name="fused_mask")]
    for layer in layers:
        prefix = LAYER.format(layer)
        hidden, packed, bias = _projections(nodes, made_by, weights, prefix + "attention.self.", folder)
        graph.initializer.extend([_appended(packed, f"fused_qkv_weight_{layer}", folder, weights_file),
                                  _appended(bias, f"fused_qkv_bias_{layer}", folder, weights_file)])
        projection = _consumer_of_context(nodes, made_by, prefix + "attention.output.LayerNorm.weight")
        fused.append(helper.make_node(
            "Attention", [hidden, f"fused_qkv_weight_{layer}", f"fused_qkv_bias_{layer}", "fused_mask"],
            [f"fused_attention_{layer}"], domain=MICROSOFT, num_heads=HEADS, name=f"fused_attention_{layer}"))
        projection.input[0] = f"fused_attention_{layer}"
        fused.append(_bias_gelu(nodes, prefix + "intermediate.dense.bias", layer))
    graph.node.extend(fused)
    if not any(opset.domain == MICROSOFT for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MICROSOFT, 1))
    _keep_needed(model)
    return model


def _adding(nodes: list["NodeProto"], name: str) -> "NodeProto":
    """The one Add node with the initializer `name` among its inputs."""
    found = [node for node in nodes if node.op_type == "Add" and name in node.input]
    if len(found) != 1:
        raise NotFused(f"{len(found)} Add nodes of {name}")
    return found[0]


def _array(tensor: "TensorProto", folder: Path) -> np.ndarray:
    """The values of `tensor`, read from its external file in `folder` when they are kept there."""
    from onnx import external_data_helper, numpy_helper

    if external_data_helper.uses_external_data(tensor):
        tensor = type(tensor).FromString(tensor.SerializeToString())
        external_data_helper.load_external_data_for_tensor(tensor, str(folder))
    return numpy_helper.to_array(tensor)


def _appended(values: np.ndarray, name: str, folder: Path, weights_file: str) -> "TensorProto":
    """A tensor `name` of `values`, written at the end of `weights_file` (at a page boundary, as
    onnxruntime maps the file) and pointing there."""
    from onnx import external_data_helper, numpy_helper

    tensor = numpy_helper.from_array(np.ascontiguousarray(values), name)
    data = tensor.raw_data
    with open(folder / weights_file, "ab") as handle:
        end = handle.seek(0, 2)
        offset = -(-end // 4096) * 4096
        handle.write(b"\0" * (offset - end) + data)
    external_data_helper.set_external_data(tensor, weights_file, offset, len(data))
    tensor.data_location = tensor.EXTERNAL
    tensor.ClearField("raw_data")
    return tensor


def _projections(nodes, made_by, weights, prefix: str, folder: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """The layer's input and its query, key and value weights and biases side by side (the packed
    layout `Attention` takes: columns Q, then K, then V)."""
    hidden: set[str] = set()
    matrices, biases = [], []
    for part in ("query", "key", "value"):
        bias_name = prefix + part + ".bias"
        add = _adding(nodes, bias_name)
        product = made_by.get(next(i for i in add.input if i != bias_name))
        if product is None or product.op_type != "MatMul" or product.input[1] not in weights:
            raise NotFused(f"{bias_name} is not added to a MatMul by a weight")
        hidden.add(product.input[0])
        matrices.append(_array(weights[product.input[1]], folder))
        biases.append(_array(weights[bias_name], folder))
    if len(hidden) != 1:
        raise NotFused(f"{prefix} projects different inputs")
    packed = np.concatenate(matrices, axis=1)
    if packed.shape != (matrices[0].shape[0], 3 * matrices[0].shape[0]):
        raise NotFused(f"{prefix} projections are not square")
    return hidden.pop(), packed, np.concatenate(biases)


def _consumer_of_context(nodes, made_by, norm_weight: str) -> "NodeProto":
    """The attention's output projection (a MatMul whose product the layer norm with `norm_weight`
    adds back to the residual): its first input is the attention context to replace."""
    norms = [n for n in nodes if n.op_type == "SkipLayerNormalization" and norm_weight in n.input]
    if len(norms) != 1:
        raise NotFused(f"no single skip layer norm of {norm_weight}")
    projection = made_by.get(norms[0].input[0])
    if projection is None or projection.op_type != "MatMul":
        raise NotFused(f"{norm_weight} does not follow a MatMul")
    return projection


def _bias_gelu(nodes, bias_name: str, layer: int) -> "NodeProto":
    """`BiasGelu(x, b)` in place of Add(x, b) → Div(√2) → Erf → Add(1) → Mul(½) → Mul(x + b): it
    writes the last Mul's output, so what reads the GELU reads it unchanged."""
    from onnx import helper

    add = _adding(nodes, bias_name)
    total = add.output[0]
    readers = [node for node in nodes if total in node.input]
    division = [node for node in readers if node.op_type == "Div"]
    if len(readers) != 2 or len(division) != 1:
        raise NotFused(f"{bias_name} does not feed one GELU")
    chain = [division[0]]
    for op_type in ("Erf", "Add", "Mul"):
        after = [node for node in nodes if chain[-1].output[0] in node.input]
        if len(after) != 1 or after[0].op_type != op_type:
            raise NotFused(f"GELU of {bias_name}: expected {op_type}")
        chain.append(after[0])
    last = [node for node in readers if node.op_type == "Mul" and chain[-1].output[0] in node.input]
    if len(last) != 1:
        raise NotFused(f"GELU of {bias_name} does not end in x · Φ(x)")
    x = next(i for i in add.input if i != bias_name)
    return helper.make_node("BiasGelu", [x, bias_name], [last[0].output[0]], domain=MICROSOFT,
                            name=f"fused_gelu_{layer}")


def _keep_needed(model: "ModelProto") -> None:
    """Nodes in an order where every input is made before it is read, without those no graph output
    needs; initializers no node reads dropped."""
    graph = model.graph
    made = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(i in made for i in node.input)]
        if not ready:
            raise NotFused("the rewritten graph has a cycle or a missing input")
        for node in ready:
            made.update(node.output)
        ordered += ready
        taken = {id(node) for node in ready}
        pending = [node for node in pending if id(node) not in taken]
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(ordered):
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
