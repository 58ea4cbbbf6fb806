"""Next-token logits, caches, sampling and generation for dense and InAttention GPTs.

Every path reuses the model's own pieces (`embed`, `norm_x0`, each block's `project` or `query`
before its attention and `finish` after it, `logits`, the position helpers) and differs from the
plain full forward only in how it attends; it must give the same logits.

    state.py     InAttention's O(T x d) path: S = N(x0), absorbed projections, online softmax
    kvcache.py   per-layer key/value caches (dense, and InAttention's speed-over-memory option)
    chunk_attention.py  a chunk of queries over the cache so far: the mask as an O(c + T) view
    full.py      no cache: the model's forward, fused (`sdpa`) or with its naive attention
    modes.py     the registry and the uniform prefill / decode_step API
    sampling.py  greedy, temperature, top-k, top-p
    generate.py  generation over any mode
"""

from inattn.inference.common import DEFAULT_CHUNK
from inattn.inference.full import TokenCache, naive_logits, sdpa_logits
from inattn.inference.generate import (
    generate,
    make_generator,
    max_new_tokens_for,
    stream_tokens,
)
from inattn.inference.kvcache import KVCache
from inattn.inference.modes import (
    DEFAULT_MODE,
    MODES,
    Cache,
    Mode,
    cache_bytes_per_token,
    decode_step,
    get_mode,
    modes_for,
    prefill,
    state_bytes,
)
from inattn.inference.sampling import filter_logits, sample_next, top_p_mask
from inattn.inference.state import InAttentionState, absorbed_attention, inattn_next_logits

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_MODE",
    "MODES",
    "Cache",
    "InAttentionState",
    "KVCache",
    "Mode",
    "TokenCache",
    "absorbed_attention",
    "cache_bytes_per_token",
    "decode_step",
    "filter_logits",
    "generate",
    "get_mode",
    "inattn_next_logits",
    "make_generator",
    "max_new_tokens_for",
    "modes_for",
    "naive_logits",
    "prefill",
    "sample_next",
    "sdpa_logits",
    "state_bytes",
    "stream_tokens",
    "top_p_mask",
]
