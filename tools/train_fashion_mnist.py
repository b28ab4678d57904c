#!/usr/bin/python3
"""Train q8's Fashion-MNIST CNN and export it to ONNX with BatchNorm kept.

The model is the accuracy benchmark's test subject (qbench accuracy): small,
but with what quantization finds hard: BatchNormalization nodes to fold,
ReLU to fuse, a tanh layer and a sigmoid dense layer with fixed output ranges.

Input "input": float32 [N, 1, 28, 28], pixel / 255 (values in [0, 1]; no mean
or std subtraction). quant/dataset.h (q8_dataset_pixel_to_input) applies the
same normalization. Output "logits": float32 [N, 10] (no softmax).

Needs Debian's python3-torch and python3-onnx (apt-get install
--no-install-recommends python3-torch python3-onnx) and the IDX files of
dataset-fashion-mnist; run it with Debian's /usr/bin/python3.
Deterministic: same seed, same thread count -> same weights, same file.
"""

import argparse
import gzip
import os
import sys
import time

# Spinning OpenMP workers stall when the two cores are shared (a parallel
# build alongside made an epoch 4x slower); waiting passively costs little.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"  # Debian dataset-fashion-mnist
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "models", "fashion_mnist_cnn.onnx")
NORMALIZATION = "input = pixel / 255 (float32, values in [0, 1]); NCHW [N, 1, 28, 28]"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def read_idx(path, magic):
    """uint8 array of an IDX file (gzip'd or plain), shape from its header."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        sys.exit(f"{path}: magic 0x{found:08x}, expected 0x{magic:08x}")
    ndims = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndims)
    if data.size != int(np.prod(dims)):
        sys.exit(f"{path}: {data.size} data bytes, header says {dims}")
    return data.reshape(dims)


def load_split(folder, split):
    def find(kind):
        for name in (f"{split}-{kind}-ubyte.gz", f"{split}-{kind}-ubyte"):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
        sys.exit(f"{folder}: no {split}-{kind}-ubyte[.gz] (install dataset-fashion-mnist)")
    images = read_idx(find("images-idx3"), 0x00000803)
    labels = read_idx(find("labels-idx1"), 0x00000801)
    if len(images) != len(labels) or labels.max() >= 10:
        sys.exit(f"{folder}: {split}: counts or labels do not match")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def normalize(pixels_u8):
    """[N, 28, 28] uint8 -> [N, 1, 28, 28] float32: the model's input contract.
    A division (not * (1/255)) so q8's C side gets bit-identical inputs."""
    return pixels_u8.unsqueeze(1).float() / 255.0


class FashionCNN(nn.Module):
    """Three conv+BN+ReLU+pool blocks, then tanh and sigmoid dense layers.
    One named module per node, so the ONNX node names say which layer they
    are ("/conv1/Conv", "/bn1/BatchNormalization", "/fc2/Gemm", ...): the
    names the accuracy report and --keep-float-nodes use."""

    def __init__(self):
        super().__init__()
        # No conv bias: the BatchNorm right after it has its own shift.
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)   # 16 x 28 x 28
        self.bn1, self.relu1, self.pool1 = nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)  # 32 x 14 x 14
        self.bn2, self.relu2, self.pool2 = nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1, bias=False)  # 32 x 7 x 7
        self.bn3, self.relu3, self.pool3 = nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)
        self.flatten = nn.Flatten()                               # 288 = 32 x 3 x 3
        self.fc1, self.tanh = nn.Linear(288, 64), nn.Tanh()
        self.fc2, self.sigmoid = nn.Linear(64, 32), nn.Sigmoid()
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.pool3(self.relu3(self.bn3(self.conv3(x))))
        x = self.tanh(self.fc1(self.flatten(x)))
        return self.fc3(self.sigmoid(self.fc2(x)))


def evaluate(model, images, labels, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            logits = model(normalize(images[i:i + batch]))
            correct += (logits.argmax(1) == labels[i:i + batch]).sum().item()
    return 100.0 * correct / len(images)


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    # channels_last: mkldnn's pooling and BatchNorm run faster on NHWC; the
    # exported graph is the same either way (export() converts back).
    model = FashionCNN().to(memory_format=torch.channels_last)
    steps = args.epochs * ((len(train_x) + args.batch_size - 1) // args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=gen)
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            x = normalize(train_x[idx]).contiguous(memory_format=torch.channels_last)
            # Horizontal flips: clothes stay the same class mirrored.
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x[flip] = x[flip].flip(3)
            loss = loss_fn(model(x), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(train_x):.4f}, "
              f"test top-1 {evaluate(model, test_x, test_y):.2f}%, "
              f"{time.time() - start:.0f} s", flush=True)
    return model, test_x, test_y, time.time() - start


def export(model, path, top1):
    import onnx  # python3-onnx: doc_string, metadata and the checks below

    model.eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 1, 28, 28)
    # Eval-mode export folds BatchNorm into Conv even without constant
    # folding; PRESERVE keeps the BatchNormalization nodes (with running
    # statistics, as the model is in eval mode) for q8's own BN folding.
    torch.onnx.export(model, dummy, path, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    m = onnx.load(path)
    m.doc_string = (f"q8 Fashion-MNIST CNN (tools/train_fashion_mnist.py). {NORMALIZATION}. "
                    f"Output logits [N, 10], classes {', '.join(CLASSES)}. "
                    f"Float top-1 on t10k: {top1:.2f}%.")
    for key, value in (("normalization", NORMALIZATION), ("float_top1", f"{top1:.2f}"),
                       ("classes", ",".join(CLASSES))):
        m.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def check_graph(m):
    ops = [n.op_type for n in m.graph.node]
    bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    if len(bn) != 3 or any(len(n.output) != 1 for n in bn):
        sys.exit(f"expected 3 inference BatchNormalization nodes, graph has {ops}")
    return ops


def onnx_numpy_logits(m, x):
    """Runs the exported graph with numpy, node by node (only the ops this
    model uses): proves the file, not the PyTorch module, scores top-1."""
    from onnx import numpy_helper

    env = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    env[m.graph.input[0].name] = x
    for n in m.graph.node:
        a = {at.name: at for at in n.attribute}
        i = [env[name] for name in n.input]
        if n.op_type == "Conv":
            w = i[0 + 1]
            pad = list(a["pads"].ints)
            xp = np.pad(i[0], ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
            kh, kw = w.shape[2:]
            cols = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
            y = np.einsum("nchwij,ocij->nohw", cols, w, optimize=True)
            if len(i) > 2:
                y = y + i[2][None, :, None, None]
        elif n.op_type == "BatchNormalization":
            eps = a["epsilon"].f
            s = i[1] / np.sqrt(i[4] + eps)
            y = (i[0] - i[3][None, :, None, None]) * s[None, :, None, None] \
                + i[2][None, :, None, None]
        elif n.op_type == "Relu":
            y = np.maximum(i[0], 0)
        elif n.op_type == "MaxPool":
            k = a["kernel_shape"].ints[0]
            h, w_ = (i[0].shape[2] // k) * k, (i[0].shape[3] // k) * k
            v = i[0][:, :, :h, :w_]
            y = v.reshape(v.shape[0], v.shape[1], h // k, k, w_ // k, k).max(axis=(3, 5))
        elif n.op_type == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif n.op_type == "Gemm":
            b = i[1].T if a["transB"].i else i[1]
            y = i[0] @ b + i[2]
        elif n.op_type == "Tanh":
            y = np.tanh(i[0])
        elif n.op_type == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        else:
            sys.exit(f"numpy check: op {n.op_type} not handled")
        env[n.output[0]] = y.astype(np.float32)
    return env[m.graph.output[0].name]


def main():
    p = argparse.ArgumentParser(
        description="Train the Fashion-MNIST CNN of q8's accuracy benchmark and export "
                    "it to ONNX (opset 13, BatchNormalization kept, dynamic batch). "
                    "Input normalization: " + NORMALIZATION + ".")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="ONNX file to write (default: models/fashion_mnist_cnn.onnx "
                        "in this repository)")
    p.add_argument("--seed", type=int, default=1, help="seed of weights, order, flips (default 1)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help=f"folder with the IDX files (default {DEFAULT_DATA})")
    p.add_argument("--batch-size", type=int, default=128, help="default 128")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (default 2; results depend on it)")
    args = p.parse_args()
    try:  # needed only at export, but better missed now than after training
        import onnx  # noqa: F401
    except ImportError:
        sys.exit("needs Debian's python3-onnx (apt-get install python3-onnx)")

    model, test_x, test_y, seconds = train(args)
    model.to(memory_format=torch.contiguous_format)  # score what is exported
    top1 = evaluate(model, test_x, test_y)
    m = export(model, args.out, top1)
    ops = check_graph(m)

    x = normalize(test_x).numpy()
    with torch.no_grad():
        ref = model(torch.from_numpy(x[:500])).numpy()
    logits = np.concatenate([onnx_numpy_logits(m, x[i:i + 500]) for i in range(0, len(x), 500)])
    diff = float(np.abs(logits[:500] - ref).max())
    onnx_top1 = 100.0 * float((logits.argmax(1) == test_y.numpy()).mean())
    if diff > 1e-3 or abs(onnx_top1 - top1) > 0.05:
        sys.exit(f"ONNX graph disagrees with PyTorch: max |diff| {diff:g}, "
                 f"top-1 {onnx_top1:.2f}% vs {top1:.2f}%")

    params = sum(t.numel() for t in model.parameters())
    print(f"trained in {seconds:.0f} s ({args.epochs} epochs, {args.threads} threads)")
    print(f"float top-1 on t10k: {top1:.2f}% (PyTorch), {onnx_top1:.2f}% (ONNX graph in "
          f"numpy, max |logit diff| {diff:.1e})")
    print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, {params} parameters")
    print(f"ops: {' '.join(ops)}")


if __name__ == "__main__":
    main()
