"""Time `weights="imagenet"` of every published weight set: the first use (download from a
local server on 127.0.0.1, SHA-256 check, conversion, cache write, then the model built and
loaded) and a cache hit, against building the same model without weights in the same round.

The server (reference/weights_server.py) serves random-weight checkpoints of the real files' sizes
and layouts (timm's safetensors at the hub's URL paths, the official release's .pth.tar at
GitHub's), so the figures are the library's cost without the internet's. Needs the test
extra (torch builds the checkpoints). Run on one pinned core:

    taskset -c 0 python benchmarks/pretrained_download.py --rounds 3
"""
import argparse
import io
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import huggingface_hub.constants  # noqa: E402
import keras  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save as safetensors_bytes  # noqa: E402

from ghostnet_tf.models import registry  # noqa: E402
from reference.torch_ghostnet import random_ghostnet  # noqa: E402
from reference.weights_server import WeightsServer  # noqa: E402

VERSIONS = {"ghostnet": 1, "ghostnetv2": 2, "ghostnetv3": 3}


def checkpoint_bytes(name, source):
    entry = registry.model_entry(name)
    model = random_ghostnet(entry.width, version=VERSIONS[entry.family])
    state = model.state_dict()
    if source.hub_id is not None:
        return safetensors_bytes({(k.replace("bn.", "bn1.") if ".ghost" in k or ".dw_rpr_" in k
                                   else k): v.contiguous() for k, v in state.items()})
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "state_dict_ema": state}, buffer)
    return buffer.getvalue()


def seconds(build):
    keras.utils.clear_session()
    start = time.perf_counter()
    build()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sets = [(name, tag) for name in registry.list_models(pretrained=True)
            for tag in registry.model_entry(name).weights]
    server = WeightsServer()
    os.environ["HF_ENDPOINT"] = os.environ["GHOSTNET_TF_RELEASES_URL"] = server.url
    sizes, times = {}, {key: {"plain": [], "first": [], "cached": []} for key in sets}
    for name, tag in sets:
        source = registry.model_entry(name).weights[tag].sources[0]
        data = checkpoint_bytes(name, source)
        sizes[name, tag] = len(data)
        if source.hub_id is not None:
            server.serve_hub(source.hub_id, data)
        else:
            server.serve_release(source.release, data)
    for _ in range(args.rounds):
        for name, tag in sets:  # interleaved: each set's three timings side by side
            with tempfile.TemporaryDirectory() as home:
                os.environ["KERAS_HOME"] = home
                huggingface_hub.constants.HF_HUB_CACHE = os.path.join(home, "hub")
                entry = registry.model_entry(name)
                times[name, tag]["plain"].append(seconds(lambda: entry.build()))
                times[name, tag]["first"].append(seconds(lambda: entry.build(weights=tag)))
                times[name, tag]["cached"].append(seconds(lambda: entry.build(weights=tag)))
    server.stop()
    print(f"{args.rounds} rounds; seconds as min / median; 'over build' = the time beyond "
          "building the model without weights, measured in the same round")
    print("| weights | file | MB | build, no weights | first use | over build | cache hit | "
          "over build |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, tag in sets:
        t = times[name, tag]
        source = registry.model_entry(name).weights[tag].sources[0]
        file = "hub safetensors" if source.hub_id else "release .pth.tar"
        over = {kind: [a - b for a, b in zip(t[kind], t["plain"])] for kind in ("first", "cached")}
        cell = lambda values: f"{min(values):.2f} / {statistics.median(values):.2f}"  # noqa: E731
        print(f"| `{name}` {tag} | {file} | {sizes[name, tag] / 1e6:.1f} | {cell(t['plain'])} | "
              f"{cell(t['first'])} | {cell(over['first'])} | {cell(t['cached'])} | "
              f"{cell(over['cached'])} |")


if __name__ == "__main__":
    main()
