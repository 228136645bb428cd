# Same-run baselines on this GPU: copy bandwidth, bf16 GEMM peak, and transformers decode of a
# model of the given config folder's shape (random weights, bf16; R1-Distill-Qwen-7B or
# DeepSeek-V2-Lite in docs/benchmarks.md) after a 512-token prompt.
import json, sys, time
import torch
from transformers import AutoConfig, AutoModelForCausalLM

out = {}
x = torch.empty(2 * 1024**3 // 2, dtype=torch.bfloat16, device="cuda")
y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = time.time()
for _ in range(20): y.copy_(x)
torch.cuda.synchronize(); dt = (time.time() - t) / 20
out["copy_GBps"] = 2 * x.numel() * 2 / dt / 1e9
del x, y
a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda"); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.time()
for _ in range(20): a @ b
torch.cuda.synchronize(); dt = (time.time() - t) / 20
out["bf16_gemm_TFLOPS"] = 2 * 8192**3 / dt / 1e12
del a, b
cfg = AutoConfig.from_pretrained(sys.argv[1])
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
for bs in (1, 32):
    ids = torch.randint(0, cfg.vocab_size, (bs, 512), device="cuda")
    with torch.no_grad():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        torch.cuda.synchronize(); t = time.time(); model(ids); torch.cuda.synchronize(); prefill = time.time() - t
        t = time.time()
        model.generate(ids, max_new_tokens=64, min_new_tokens=64, do_sample=False)
        torch.cuda.synchronize(); total = time.time() - t
    out[f"hf_decode_tok_s_batch{bs}"] = bs * 63 / (total - prefill)
    out[f"hf_prefill_tok_s_batch{bs}"] = bs * 512 / prefill
print(json.dumps(out, indent=1))
