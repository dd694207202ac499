"""PyTorch eager peer for the model benchmarks and the cross-framework model tests.

A plain PyTorch re-implementation of our PretrainingModel (lib/model/heads.ts) for BERT, LINEAR
and F_NET mixing, dense and MoE feed-forward layers (experts-choose and tokens-choose routing,
dispatched with the reference's one-hot masks and einsums, or by index), with parameter names
equal to ours so that our safetensors files load into it by name.

Protocol: one JSON request per line on stdin, one JSON line per request on stdout. Requests:
load, loss, step, time, matmul_peak (see bench/model_inputs.ts and test/models-peer.test.ts).
Any exception inside a request is answered with {"error": MESSAGE}.
"""
import contextlib
import ctypes
import gc
import inspect
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

try:
    import transformers
except Exception:  # a missing or broken install only disables impl "hf-bert"
    transformers = None


# ---- the model ----

def is_replacement(layout, l, n, k):
    """REFERENCE §1 layer placement rule (lib/model/layout.ts)."""
    if k <= 0:
        return False
    return {"BOTTOM": l < k, "MIDDLE": n - k <= 2 * l < n + k,
            "MIXED": l % (n // k) == 0, "TOP": l >= n - k}[layout]


def num_groups(tokens, max_group_size):
    g = max(1, tokens // max_group_size)
    while tokens % g:
        g += 1
    return g


def gelu(x):
    return F.gelu(x, approximate="tanh")


PROFILING = False  # set by the breakdown request: scopes cost nothing otherwise


def scope(name):
    """A named part of the model for the time breakdown (the scopes lib/model opens, same names)."""
    return torch.autograd.profiler.record_function(name) if PROFILING else contextlib.nullcontext()


class LayerNorm(nn.LayerNorm):
    """LayerNorm in float32, as CUDA autocast runs it (CPU autocast in torch 1.13 does not)."""

    def forward(self, x):
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word = nn.Embedding(c["vocab_size"], c["d_emb"])
        self.position = nn.Embedding(c["max_seq_length"], c["d_emb"])
        # "type" is taken by nn.Module.type(): registered and reached through _modules directly.
        self._modules["type"] = nn.Embedding(c["type_vocab_size"], c["d_emb"])
        self.layer_norm = LayerNorm(c["d_emb"], eps=c["layer_norm_epsilon"])
        self.hidden_mapping_in = nn.Linear(c["d_emb"], c["d_model"])
        self.rate = c["dropout_rate"]

    def forward(self, ids, types):
        with scope("embeddings"):
            pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
            x = self.word(ids) + self.position(pos) + self._modules["type"](types)
            return F.dropout(self.hidden_mapping_in(self.layer_norm(x)), self.rate, self.training)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.query, self.key, self.value, self.output = (nn.Linear(d, d) for _ in range(4))
        self.heads, self.rate = c["num_heads"], c["mixing_dropout_rate"]

    def forward(self, x, mask):
        B, N, d = x.shape
        split = lambda t: t.reshape(B, N, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        if hasattr(F, "scaled_dot_product_attention") and q.dtype != torch.float64:
            # Fused, as lib/model/attention.ts with libtorch >= 2.0: padded keys get an additive -1e10,
            # a padded query's row (uniform when fully masked) is the mean of v.
            pad = mask[:, 0].diagonal(dim1=-2, dim2=-1)  # [B, N]: mask[i, i] is "i is padding"
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=pad[:, None, None, :].to(q.dtype) * -1e10,
                                                      dropout_p=self.rate if self.training else 0.0)
            ctx = torch.where(pad[:, None, :, None], v.mean(2, keepdim=True), attended)
        else:
            # Replacement (not addition) of masked scores, like lib/model/attention.ts.
            scores = (q @ k.transpose(-2, -1) * (1 / math.sqrt(d // self.heads))).masked_fill(mask, -1e10)
            ctx = F.dropout(torch.softmax(scores, -1), self.rate, self.training) @ v
        return self.output(ctx.transpose(1, 2).reshape(B, N, d))


class Mixing(nn.Module):
    def __init__(self, kind, c):
        super().__init__()
        self.kind = kind
        n, d = c["max_seq_length"], c["d_model"]
        if kind == "LINEAR":
            self.seq_kernel = nn.Parameter(torch.empty(n, n))
            self.hidden_kernel = nn.Parameter(torch.empty(d, d))
        elif kind != "F_NET":
            raise ValueError(f"model_arch {kind} is not implemented by the peer (BERT, LINEAR, F_NET)")

    def forward(self, x):
        if self.kind == "LINEAR":
            return self.seq_kernel @ x @ self.hidden_kernel
        # F_NET: real part of the 2D DFT over (sequence, hidden), computed in float32.
        with torch.autocast(x.device.type, enabled=False):
            return torch.fft.fftn(x.float(), dim=(1, 2)).real.to(x.dtype)


class Experts(nn.Module):
    def __init__(self, c):
        super().__init__()
        E, d, f = c["num_experts"], c["d_model"], c["d_ff"]
        self.w1, self.b1 = nn.Parameter(torch.empty(E, d, f)), nn.Parameter(torch.zeros(E, 1, f))
        self.w2, self.b2 = nn.Parameter(torch.empty(E, f, d)), nn.Parameter(torch.zeros(E, 1, d))
        self.rate = c["expert_dropout_rate"]

    def forward(self, x):  # [E, S, H] -> [E, S, H]
        y = torch.baddbmm(self.b2, gelu(torch.baddbmm(self.b1, x, self.w1)), self.w2)
        return F.dropout(y, self.rate, self.training)


def top_k(x, k):
    """Top-k along the last dim; ties keep the lower index first (our stableTopK)."""
    v, i = torch.sort(x, dim=-1, descending=True, stable=True)
    return v[..., :k], i[..., :k]


def token_priorities(probs, k, bpr):
    """Tokens-choose: each choice's slot in its expert = its rank among the tokens sent there, all
    top-1 choices before any top-2, tokens in BPR order (confident first) or token order."""
    G, T, E = probs.shape
    gate, expert = top_k(probs, k)  # [G, T, K]
    order = top_k(gate[..., 0], T)[1] if bpr else torch.arange(T, device=probs.device).expand(G, T)
    by_order = order.unsqueeze(2).expand(G, T, k)
    mask = F.one_hot(expert.gather(1, by_order).transpose(1, 2).reshape(G, k * T), E)
    rank = ((mask.cumsum(1) * mask).sum(2) - 1).reshape(G, k, T).transpose(1, 2)  # processing order
    priority = torch.empty_like(rank).scatter_(1, by_order, rank)  # back to token order
    aux = F.one_hot(expert, E).amax(2).float().mean(1).mul(probs.mean(1)).mean() * E * E
    return gate, expert, priority, aux


def route_masked(probs, c, C):
    """One-hot dispatch[G,T,E,C] and combine[G,T,E,C] (expertsChooseMasked / tokensChooseMasked)."""
    G, T, E = probs.shape
    if c["router_type"] == "experts_choose":
        weight, index = top_k(probs.transpose(1, 2), C)  # [G, E, C]: each expert's top-C tokens
        dispatch = F.one_hot(index, T).permute(0, 3, 1, 2).float()
        return dispatch, dispatch * weight.unsqueeze(1), probs.new_zeros(())
    _, expert, priority, aux = token_priorities(probs, c["num_selected_experts"], c["batch_prioritized_routing"])
    per_expert = (F.one_hot(expert, E) * (priority + 1).unsqueeze(3)).amax(2) - 1  # [G, T, E]; -1: not chosen
    valid = (per_expert >= 0) & (per_expert < C)
    dispatch = (F.one_hot(per_expert.clamp(0, C - 1), C) * valid.unsqueeze(3)).float()
    return dispatch, dispatch * probs.unsqueeze(3), aux


def route_slots(probs, c, C):
    """Per expert slot [G,E,C]: its token (T = empty) and weight (expertsChooseSlots / tokensChooseSlots)."""
    G, T, E = probs.shape
    if c["router_type"] == "experts_choose":
        weight, index = top_k(probs.transpose(1, 2), C)
        return index, weight, probs.new_zeros(())
    K = c["num_selected_experts"]
    gate, expert, priority, aux = token_priorities(probs, K, c["batch_prioritized_routing"])
    kept = priority < C  # flat slot e·C + priority; dropped choices go to the overflow slot E·C
    slot = torch.where(kept, expert * C + priority, torch.full_like(priority, E * C)).reshape(G, T * K)
    token = torch.arange(T, device=probs.device).reshape(1, T, 1).expand(G, T, K).reshape(G, T * K)
    index = torch.full((G, E * C + 1), T, device=probs.device).scatter(1, slot, token)
    weight = probs.new_zeros(G, E * C + 1).scatter(1, slot, (gate * kept).reshape(G, T * K))
    return index[:, :E * C].reshape(G, E, C), weight[:, :E * C].reshape(G, E, C), aux


class Moe(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.router = nn.Linear(c["d_model"], c["num_experts"])
        self.experts = Experts(c)
        self.dispatch = "masked"

    def geometry(self, tokens):
        """G, T, C as MoeLayer.geometry: round half to even (Python's round), C ≤ T for experts-choose."""
        c = self.c
        G = num_groups(tokens, c["max_group_size"])
        T = tokens // G
        factor = c["train_capacity_factor"] if self.training else c["eval_capacity_factor"]
        C = max(round(factor * T / c["num_experts"]), c["min_expert_capacity"])
        return G, T, min(C, T) if c["router_type"] == "experts_choose" else C

    def forward(self, x):
        c, (B, N, H), E = self.c, x.shape, self.c["num_experts"]
        G, T, C = self.geometry(B * N)
        tokens = x.reshape(G, T, H)
        with torch.autocast(x.device.type, enabled=False), scope("moe/router"):  # the router stays float32
            r_in, eps = tokens.float(), c["jitter_noise"]
            if self.training and eps > 0:
                r_in = r_in * torch.empty_like(r_in).uniform_(1 - eps, 1 + eps)
            logits = F.linear(r_in, self.router.weight.float(), self.router.bias.float())
            probs = torch.softmax(logits, -1)
            z_loss = torch.logsumexp(logits, -1).square().mean()
        if self.dispatch == "masked":  # the reference's default: einsums over one-hot masks
            with scope("moe/routing"):
                dispatch, combine, aux = route_masked(probs, c, C)
            with scope("moe/dispatch"):
                expert_in = torch.einsum("gth,gtec->egch", tokens, dispatch.to(tokens.dtype)).reshape(E, G * C, H)
            with scope("moe/experts"):
                out = self.experts(expert_in).reshape(E, G, C, H)
            with scope("moe/combine"):
                y = torch.einsum("egch,gtec->gth", out, combine.to(out.dtype))
        else:  # index-based: gather slots (row T is a zero row), run experts, weighted scatter-add
            with scope("moe/routing"):
                index, weight, aux = route_slots(probs, c, C)
            with scope("moe/dispatch"):
                padded = torch.cat([tokens, tokens.new_zeros(G, 1, H)], 1)
                idx = index.reshape(G, E * C, 1).expand(G, E * C, H)
                expert_in = padded.gather(1, idx).reshape(G, E, C, H).transpose(0, 1).reshape(E, G * C, H)
            with scope("moe/experts"):
                out = self.experts(expert_in).reshape(E, G, C, H).transpose(0, 1).reshape(G, E * C, H)
            with scope("moe/combine"):
                out = out * weight.reshape(G, E * C, 1).to(out.dtype)
                y = out.new_zeros(G, T + 1, H).scatter_add(1, idx, out)[:, :T]
        return y.reshape(B, N, H), aux, z_loss


class Block(nn.Module):
    def __init__(self, c, attention, moe):
        super().__init__()
        d, eps = c["d_model"], c["layer_norm_epsilon"]
        if attention:
            self.attention = Attention(c)
        else:
            self.mixing = Mixing(c["model_arch"], c)
        self.mixing_layer_norm = LayerNorm(d, eps=eps)
        if moe:
            self.moe = Moe(c)
        else:
            self.feed_forward = nn.Module()
            self.feed_forward.intermediate = nn.Linear(d, c["d_ff"])
            self.feed_forward.output = nn.Linear(c["d_ff"], d)
        self.output_layer_norm = LayerNorm(d, eps=eps)
        self.c, self.is_attention, self.is_moe = c, attention, moe

    def forward(self, x, ids, mask):
        c = self.c
        if self.is_attention:
            with scope("attention"):
                mixed = self.attention(x, mask)
        else:
            with scope("mixing"):
                inp = x * (ids != c["pad_id"]).unsqueeze(2).to(x.dtype) if c["mask_padding_in_mixing"] else x
                mixed = F.dropout(self.mixing(inp), c["mixing_dropout_rate"], self.training)
        with scope("layer_norm"):
            h = self.mixing_layer_norm(x + mixed)
        if self.is_moe:
            y, aux, z = self.moe(h)
            with scope("layer_norm"):
                return self.output_layer_norm(h + y), (aux, z)
        ff = self.feed_forward
        with scope("feed_forward"):
            y = F.dropout(ff.output(gelu(ff.intermediate(h))), c["dropout_rate"], self.training)
        with scope("layer_norm"):
            return self.output_layer_norm(h + y), None


class PretrainingModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c, d = c, c["d_model"]
        n, bert = c["num_layers"], c["model_arch"] == "BERT"
        self.encoder = nn.Module()
        self.encoder.embeddings = Embeddings(c)
        self.encoder.layers = nn.ModuleList(
            Block(c, bert or is_replacement(c["attention_layout"], l, n, c["num_attention_layers"]),
                  is_replacement(c["moe_layout"], l, n, c["num_moe_layers"])) for l in range(n))
        self.encoder.pooler = nn.Linear(d, d)
        self.mlm = nn.Module()
        self.mlm.dense = nn.Linear(d, c["d_emb"])
        self.mlm.layer_norm = LayerNorm(c["d_emb"], eps=c["layer_norm_epsilon"])
        self.mlm.output_bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        self.nsp = nn.Linear(d, 2)
        # REFERENCE §1 initialisation: kernels and embeddings ~ N(0, std), biases 0, LayerNorm 1.
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith("layer_norm.weight"):
                    p.fill_(1)
                elif name.endswith(("bias", ".b1", ".b2")):
                    p.zero_()
                else:
                    p.normal_(0, c["init_std"])

    def encode(self, b):
        """(sequence, pooled, aux losses, z losses): the encoder, as Encoder.forward."""
        c, ids = self.c, b["input_ids"]
        x = self.encoder.embeddings(ids, b["type_ids"])
        real = ids != c["pad_id"]
        mask = (real.unsqueeze(2) & real.unsqueeze(1)).logical_not().unsqueeze(1)  # [B, 1, N, N]
        aux, z = [], []
        for layer in self.encoder.layers:
            x, terms = layer(x, ids, mask)
            if terms:
                aux.append(terms[0])
                z.append(terms[1])
        with scope("heads"):
            return x, torch.tanh(self.encoder.pooler(x[:, 0])), aux, z

    def forward(self, b):
        """(loss, masked_lm_loss, next_sentence_loss), as PretrainingModel.forward and moeTerms."""
        c = self.c
        x, pooled, aux, z = self.encode(b)
        with scope("heads"):
            return self.heads(b, x, pooled, aux, z)

    def heads(self, b, x, pooled, aux, z):
        c = self.c
        B, P = b["masked_lm_positions"].shape
        g = x.gather(1, b["masked_lm_positions"].unsqueeze(2).expand(B, P, x.shape[2]))
        h = self.mlm.layer_norm(gelu(self.mlm.dense(g)))
        logits = F.linear(h, self.encoder.embeddings.word.weight, self.mlm.output_bias)
        w = b["masked_lm_weights"].float().reshape(-1)
        ce = F.cross_entropy(logits.reshape(B * P, -1).float(), b["masked_lm_ids"].reshape(-1), reduction="none")
        mlm = (ce * w).sum() / w.sum().clamp(min=1e-5)
        nsp = F.cross_entropy(self.nsp(pooled).float(), b["next_sentence_labels"], reduction="sum") / B
        loss = mlm + nsp
        if aux:
            loss = loss + c["auxiliary_loss_factor"] * torch.stack(aux).sum() + c["router_z_loss_factor"] * torch.stack(z).sum()
        return loss, mlm, nsp


class HfBert(nn.Module):
    """Hugging Face BertForPreTraining with our config's widths (timing only; random init)."""

    def __init__(self, c):
        super().__init__()
        if transformers is None:
            raise RuntimeError("impl hf-bert needs the transformers package, which is not installed")
        if c["model_arch"] != "BERT" or c["d_emb"] != c["d_model"]:
            raise ValueError("impl hf-bert needs model_arch BERT and d_emb == d_model")
        self.pad = c["pad_id"]
        self.bert = transformers.BertForPreTraining(transformers.BertConfig(
            vocab_size=c["vocab_size"], hidden_size=c["d_model"], num_hidden_layers=c["num_layers"],
            num_attention_heads=c["num_heads"], intermediate_size=c["d_ff"], hidden_act="gelu_new",
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=c["max_seq_length"],
            type_vocab_size=c["type_vocab_size"], layer_norm_eps=1e-12, pad_token_id=c["pad_id"]))

    def encode(self, b):
        ids = b["input_ids"]
        return self.bert.bert(input_ids=ids, token_type_ids=b["type_ids"], attention_mask=(ids != self.pad).long())

    def forward(self, b):
        ids = b["input_ids"]
        labels = torch.full_like(ids, -100)  # only weighted masked positions are predicted
        keep = b["masked_lm_weights"] > 0
        rows = torch.arange(ids.shape[0], device=ids.device).unsqueeze(1).expand_as(keep)
        labels[rows[keep], b["masked_lm_positions"][keep]] = b["masked_lm_ids"][keep]
        out = self.bert(input_ids=ids, token_type_ids=b["type_ids"], attention_mask=(ids != self.pad).long(),
                        labels=labels, next_sentence_label=b["next_sentence_labels"])
        mlm = F.cross_entropy(out.prediction_logits.reshape(-1, out.prediction_logits.shape[-1]).float(), labels.reshape(-1))
        nsp = F.cross_entropy(out.seq_relationship_logits.float(), b["next_sentence_labels"])
        return out.loss, mlm, nsp


# ---- files ----

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}


def load_safetensors(path):
    """name -> CPU tensor, parsed by hand: u64 LE header length, JSON header, raw LE data."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        count = (end - begin) // torch.empty((), dtype=dtype).element_size()
        t = torch.frombuffer(data, dtype=dtype, count=count, offset=8 + n + begin) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


# ---- requests ----

S = {}  # the loaded model, batch, optimizer and settings


def sync():
    if S["device"] == "cuda":
        torch.cuda.synchronize()


def autocast():
    if S["precision"] == "bfloat16":
        return torch.autocast(device_type=S["device"], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load(req):
    S.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    c, device = req["config"], req.get("device", "cpu")
    if req.get("dispatch", "masked") not in ("masked", "scatter") or req.get("precision", "float32") not in ("float32", "bfloat16"):
        raise ValueError(f"dispatch must be masked or scatter and precision float32 or bfloat16, got {req.get('dispatch')}, {req.get('precision')}")
    torch.manual_seed(int(req.get("seed", 0)))
    model = HfBert(c) if req.get("impl", "port") == "hf-bert" else PretrainingModel(c)
    for m in model.modules():
        if isinstance(m, Moe):
            m.dispatch = req.get("dispatch", "masked")
    if req.get("weights"):
        if isinstance(model, HfBert):
            raise ValueError("impl hf-bert cannot load our weights")
        w, own = load_safetensors(req["weights"]), dict(model.named_parameters())
        missing, unexpected = sorted(set(own) - set(w)), sorted(set(w) - set(own))
        if missing or unexpected:
            raise ValueError(f"weights do not match the model: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for name, p in own.items():
                if tuple(w[name].shape) != tuple(p.shape):
                    raise ValueError(f"weight {name}: shape {list(w[name].shape)}, expected {list(p.shape)}")
                p.copy_(w[name])
    model.to(device)
    batch = {k: v.to(device) for k, v in load_safetensors(req["batch"]).items()}
    kw = {"foreach": True} if "foreach" in inspect.signature(torch.optim.AdamW).parameters else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, **kw)
    S.update(model=model, batch=batch, opt=opt, device=device, precision=req.get("precision", "float32"))
    return {"ok": True, "parameters": sum(p.numel() for p in model.parameters())}


def step(lr=None):
    """One training step; returns the loss before the update."""
    model, opt = S["model"], S["opt"]
    model.train()
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    with autocast():
        loss = model(S["batch"])[0]
    loss.backward()
    opt.step()
    return loss


def infer():
    S["model"].eval()
    with torch.no_grad(), autocast():
        return S["model"](S["batch"])


def infer_encoder():
    """The timed inference pass: an eval-mode encoder forward without gradients (serving cost)."""
    S["model"].eval()
    with torch.no_grad(), autocast():
        return S["model"].encode(S["batch"])


def release_free_memory():
    """glibc's malloc_trim(0): hands freed heap memory back to the system (no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def time_reps(req):
    fn = step if req.get("pass", "train") == "train" else infer_encoder
    for _ in range(int(req.get("warmup", 1))):
        fn()
    sync()
    if S["device"] == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        release_free_memory()  # as our side does: a previous model's freed heap is not counted
        with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS
            f.write("5")
    seconds = []
    for _ in range(int(req.get("reps", 3))):
        t0 = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - t0)
    if S["device"] == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        with open("/proc/self/status") as f:
            peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    return {"seconds": seconds, "peak_bytes": peak}


def breakdown(req):
    """Milliseconds per part, forward and backward, of one profiled pass (as bench/breakdown.ts)."""
    global PROFILING
    train = req.get("pass", "train") == "train"
    model, opt = S["model"], S["opt"]
    (step if train else infer_encoder)()  # warm-up
    PROFILING = True
    try:
        with torch.autograd.profiler.profile() as prof:
            if train:
                model.train()
                opt.zero_grad(set_to_none=True)
                with scope("forward"), autocast():
                    loss = model(S["batch"])[0]
                with scope("backward"):
                    loss.backward()
                with scope("optimizer"):
                    opt.step()
            else:
                with scope("forward"):
                    infer_encoder()
            sync()
    finally:
        PROFILING = False
    events = prof.function_events
    roots = {"forward", "backward", "optimizer"}
    scopes = {e.name for e in events if e.name in PARTS or e.name in roots}

    def chain(e):
        while e is not None:
            yield e
            e = e.cpu_parent

    creator = {}  # forward sequence number -> the part whose forward created it
    for e in events:
        if e.sequence_nr >= 0 and e.name not in scopes:
            part = next((a.name for a in chain(e) if a.name in scopes), None)
            if part and part not in roots:
                creator.setdefault(e.sequence_nr, part)
    out = {}
    for e in events:
        labels = [a.name for a in chain(e) if a.name in scopes]
        if "backward" in labels:
            node = next((a for a in chain(e) if a.sequence_nr >= 0 and a.name not in scopes), None)
            if node is not None and "AccumulateGrad" in node.name:
                label = "backward (accumulate grads)"
            else:
                label = creator.get(node.sequence_nr, "backward (unattributed)") if node is not None else "backward (unattributed)"
            phase = 1
        else:
            label, phase = (labels[0] if labels else "unscoped"), 0
        t = out.setdefault(label, [0.0, 0.0])
        t[phase] += e.self_cpu_time_total / 1000.0
    return {"parts": out}


PARTS = {"embeddings", "mixing", "attention", "layer_norm", "feed_forward", "moe/router", "moe/routing",
         "moe/dispatch", "moe/experts", "moe/combine", "heads"}


def matmul_peak(req):
    n, dev = int(req["n"]), req.get("device", "cpu")
    dtype = torch.bfloat16 if req.get("dtype") == "bfloat16" else torch.float32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for _ in range(int(req.get("reps", 5)) + 1):  # the first is a warm-up that also counts if best
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return {"gflops": 2 * n ** 3 / best / 1e9}


def handle(req):
    cmd = req.get("cmd")
    if "threads" in req:  # every request may set it (load does; matmul_peak may come first)
        torch.set_num_threads(int(req["threads"]))
    if cmd == "load":
        return load(req)
    if cmd == "matmul_peak":
        return matmul_peak(req)
    if cmd not in ("loss", "step", "time", "breakdown"):
        raise ValueError(f"unknown cmd {cmd!r}")
    if "model" not in S:
        raise RuntimeError("no model loaded")
    if cmd == "loss":
        loss, mlm, nsp = infer()
        return {"loss": loss.item(), "masked_lm_loss": mlm.item(), "next_sentence_loss": nsp.item()}
    if cmd == "step":
        return {"loss": step(req.get("lr")).item()}
    if cmd == "breakdown":
        return breakdown(req)
    return time_reps(req)


def main():
    version = getattr(transformers, "__version__", None)
    print(json.dumps({"ready": True, "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                      "transformers": version}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(json.loads(line))
        except Exception as e:  # keep serving: the caller decides what an error means
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
