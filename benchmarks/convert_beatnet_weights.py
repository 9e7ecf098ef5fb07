"""Convert BeatNet's three CRNN state dicts to the numpy file beatsync ships, and check the
numpy forward pass against torch's.

torch is needed ONLY here, once, in a scratch virtualenv (never in the project's)::

    python3.11 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    .venv/bin/pip download beatnet==1.1.3 --no-deps -d /tmp/beatnet
    /tmp/torchvenv/bin/python benchmarks/convert_beatnet_weights.py /tmp/beatnet/BeatNet-1.1.3-py3-none-any.whl

Writes src/beatsync/analysis/models/beatnet_crnn.npz (float32, keys ``model<N>/<param>``) and
prints, per model, the largest absolute difference between the torch model (BeatNet's own
``BeatNet/model.py`` class, loaded from the wheel) and :func:`beatsync.analysis.beatnet.forward`
on the same input. BeatNet's weights: CC BY 4.0 (see models/BEATNET-LICENSE.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "beatsync" / "analysis" / "models" / "beatnet_crnn.npz"


def _load_numpy_forward():
    spec = importlib.util.spec_from_file_location("beatnet_np", ROOT / "src/beatsync/analysis/beatnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports numpy only
    return module


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path, help="BeatNet wheel (pip download beatnet --no-deps)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    zf = zipfile.ZipFile(args.wheel)
    arrays: dict[str, np.ndarray] = {}
    state_dicts = {}
    for n in (1, 2, 3):
        sd = torch.load(io.BytesIO(zf.read(f"BeatNet/models/model_{n}_weights.pt")), map_location="cpu",
                        weights_only=True)
        state_dicts[n] = sd
        for k, v in sd.items():
            arrays[f"model{n}/{k}"] = v.detach().cpu().numpy().astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays)")

    # BeatNet's own model class, from the wheel (it imports torch and numpy only)
    src = zf.read("BeatNet/model.py").decode()
    ns: dict = {}
    exec(compile(src, "BeatNet/model.py", "exec"), ns)
    bnp = _load_numpy_forward()
    rng = np.random.default_rng(0)
    # realistic range: log-spectrogram values and their positive differences are >= 0, mostly < 3
    x = np.abs(rng.normal(0.0, 0.8, size=(1500, 272))).astype(np.float32)
    x[200:260] = 0.0  # a silent stretch
    worst = 0.0
    for n, sd in state_dicts.items():
        model = ns["BDA"](272, 150, 2, "cpu")
        model.load_state_dict(sd, strict=True)
        model.eval()
        with torch.no_grad():
            model.hidden.zero_()
            model.cell.zero_()
            ref = model.final_pred(model(torch.from_numpy(x).unsqueeze(0))[0]).numpy().T  # (T, 3)
        params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"model{n}/")}
        got = bnp.forward(x, params=params)
        diff = float(np.max(np.abs(got - ref)))
        worst = max(worst, diff)
        print(f"model {n}: max |numpy - torch| over {x.shape[0]} frames x 3 = {diff:.2e}")
    ok = worst < 1e-4
    print("numpy forward matches torch" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
