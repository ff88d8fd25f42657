"""Is an exported model's drift from PyTorch an export error or float32 rounding its recurrence amplifies?

Streams Shapes test images (3 iterations each, back to back) through one checkpoint three ways, one stream: PyTorch
float32, PyTorch float64 and ONNX Runtime (float32), and prints the largest state difference (relative above 1) at
chosen ticks: ONNX against PyTorch float32, and PyTorch float64 against float32. When the second is as large as the
first, the runtimes differ by rounding alone (issue 27: the hour runs' seed 2).

    RLADDER_STREAM_DATA=../shared/data python experiments/onnx_drift.py CHECKPOINT
"""
import sys

import numpy as np, torch, copy
from rladder_stream import load_model
from rladder_stream.export import export_onnx, OnnxPredictor
from rladder_stream.envs.shapes import episode_source
torch.set_num_threads(1)
ck=sys.argv[1]
m=load_model(ck).eval()
path=export_onnx(m, "/tmp/onnx_drift.onnx")
images=episode_source("test").episodes(None,60,list(range(60)))["frames"][:, :3]
frames=images[:30].reshape(-1,20,20).astype(np.float32)
o=OnnxPredictor(path, n_streams=1, providers=["CPUExecutionProvider"])
m64=copy.deepcopy(m).double()
st32=m.init_state(1); o.state={k:v.numpy() for k,v in st32.items()}
st64={k:v.double() for k,v in st32.items()}
for t in range(90):
    x=torch.from_numpy(frames[t])[None]
    with torch.no_grad():
        out32, st32 = m.step(x, st32)
        out64, st64 = m64.step(x.double(), st64)
    o.step(frames[t])
    so=o.state
    if t in (0,1,2,5,10,20,40,60,89):
        d_onnx=max(float(np.abs(so[k]-st32[k].numpy()).max()/max(1,float(st32[k].abs().max()))) for k in st32)
        d_64=max(float((st64[k]-st32[k].double()).abs().max()/max(1,float(st32[k].abs().max()))) for k in st32)
        print(f"tick {t+1}: onnx vs torch32 {d_onnx:.2e}   torch64 vs torch32 {d_64:.2e}")
