"""Converts timm's MobileNetV4-conv-S to float32 and int8 `.tflite` with litert-torch.

    python benchmarks/litert_torch_peers.py OUT_DIR

For benchmarks/accuracy_latency.py, which runs it with the benchmarks environment's Python
(timm and litert-torch pin a torch of their own, so they live in a virtual environment apart
from the test extra's). Writes OUT_DIR/mobilenetv4_conv_small_{float32,int8}.tflite: NHWC
float input like the library's exports (litert-torch's channel-last wrapper), int8 through
PT2E with litert-torch's own quantizer (symmetric, per-channel), calibrated on random images
as the library's int8 files are in the latency benchmarks. Weights are random: latency does
not depend on their values.
"""
import os
import sys

NAME = "mobilenetv4_conv_small"
SIZE = 224


def main():
    out_dir = sys.argv[1]
    import litert_torch
    import timm
    import torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    torch.manual_seed(0)
    model = timm.create_model(NAME, pretrained=False).eval()
    nhwc = litert_torch.to_channel_last_io(model, args=[0]).eval()
    sample = (torch.rand(1, SIZE, SIZE, 3),)

    def write(kind, edge_model):
        path = os.path.join(out_dir, f"{NAME}_{kind}.tflite")
        edge_model.export(path + ".part")
        os.replace(path + ".part", path)

    write("float32", litert_torch.convert(nhwc, sample))
    exported = torch.export.export(nhwc, sample).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
    for _ in range(8):
        prepared(torch.rand(1, SIZE, SIZE, 3))
    # quant_config tells the converter to lower the Q/DQ pairs to int8 kernels.
    write("int8", litert_torch.convert(
        quantize_pt2e.convert_pt2e(prepared, fold_quantize=False), sample,
        quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
