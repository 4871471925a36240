//! The Qwen2 transformer over a GGUF file's quantized weights (candle's `QMatMul` and ops).
//!
//! Written here rather than taken from `candle-transformers` because its model owns one
//! attention cache: voicesim keeps a cache per conversation and cuts it back to a shared
//! prefix, so a caller's turn costs its new tokens and a verdict the transcript, not the
//! instructions again.

use std::borrow::Cow;

use candle_core::quantized::{gguf_file, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Tensor};

pub type Result<T> = candle_core::Result<T>;

/// The longest conversation voicesim keeps (the files allow 32k; a call never needs it and
/// the rotary tables would cost memory for nothing).
pub const MAX_CONTEXT: usize = 8192;

struct Layer {
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    q_bias: Tensor,
    k_bias: Tensor,
    v_bias: Tensor,
    out: QMatMul,
    attn_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    ffn_norm: Tensor,
}

/// Token embeddings as the file stores them (quantized), a row made f32 when its token is
/// looked up: dequantizing the whole table at load took 5 s on two cores and 466 MB of f16.
struct Embeddings {
    table: QTensor,
    width: usize,
    row_bytes: usize,
}

impl Embeddings {
    fn new(table: QTensor, width: usize) -> Result<Self> {
        let dtype = table.dtype();
        if width == 0 || width % dtype.block_size() != 0 {
            candle_core::bail!("embeddings of width {width} do not split into {dtype:?} blocks");
        }
        let row_bytes = width / dtype.block_size() * dtype.type_size();
        Ok(Embeddings {
            table,
            width,
            row_bytes,
        })
    }

    /// The rows of `tokens`, (tokens, width) in f32. Each goes through f16 as the whole
    /// table once did, so the model's numbers (and its measured verdicts) stay the same.
    fn rows(&self, tokens: &[u32]) -> Result<Tensor> {
        let data = self.table.data()?;
        let dev = &Device::Cpu;
        let rows = tokens
            .iter()
            .map(|&token| {
                let from = token as usize * self.row_bytes;
                let bytes = data.get(from..from + self.row_bytes).ok_or_else(|| {
                    candle_core::Error::Msg(format!("token {token} is not in the vocabulary"))
                })?;
                let storage = QStorage::from_data(Cow::Borrowed(bytes), dev, self.table.dtype())?;
                QTensor::new(storage, (self.width,))?
                    .dequantize(dev)?
                    .to_dtype(DType::F16)?
                    .to_dtype(DType::F32)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&rows, 0)
    }
}

/// The weights, loaded once and shared (read-only) by every conversation.
pub struct Qwen2 {
    embed: Embeddings,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    pub context: usize,
}

/// One conversation's attention keys and values, layer by layer, and how many tokens they hold.
#[derive(Clone, Default)]
pub struct Cache {
    kv: Vec<(Tensor, Tensor)>,
    pub len: usize,
}

impl Cache {
    /// Keeps the first `len` tokens (the shared prefix with a new prompt).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        if len == 0 {
            *self = Cache::default();
            return Ok(());
        }
        for (k, v) in &mut self.kv {
            *k = k.narrow(2, 0, len)?;
            *v = v.narrow(2, 0, len)?;
        }
        self.len = len;
        Ok(())
    }
}

impl Qwen2 {
    pub fn load<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
    ) -> Result<Self> {
        let dev = &Device::Cpu;
        let meta = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| candle_core::Error::Msg(format!("no {key} in the file's metadata")))
        };
        let heads = meta("qwen2.attention.head_count")?.to_u32()? as usize;
        let kv_heads = meta("qwen2.attention.head_count_kv")?.to_u32()? as usize;
        let width = meta("qwen2.embedding_length")?.to_u32()? as usize;
        let blocks = meta("qwen2.block_count")?.to_u32()? as usize;
        let eps = meta("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let context = (meta("qwen2.context_length")?.to_u32()? as usize).min(MAX_CONTEXT);
        let base = meta("qwen2.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || width % heads != 0 {
            candle_core::bail!("inconsistent attention shape: {heads} heads, {kv_heads} kv heads");
        }
        let head_dim = width / heads;
        let mut tensor = |name: &str| content.tensor(reader, name, dev);
        let dense = |t: QTensor| t.dequantize(dev);
        let embed = Embeddings::new(tensor("token_embd.weight")?, width)?;
        let output = match tensor("output.weight") {
            Ok(t) => QMatMul::from_qtensor(t)?,
            // Tied to the embeddings: read again, as a matrix this time.
            Err(_) => QMatMul::from_qtensor(tensor("token_embd.weight")?)?,
        };
        let norm = dense(tensor("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut get = |part: &str| tensor(&format!("blk.{i}.{part}"));
            layers.push(Layer {
                q: QMatMul::from_qtensor(get("attn_q.weight")?)?,
                k: QMatMul::from_qtensor(get("attn_k.weight")?)?,
                v: QMatMul::from_qtensor(get("attn_v.weight")?)?,
                q_bias: dense(get("attn_q.bias")?)?,
                k_bias: dense(get("attn_k.bias")?)?,
                v_bias: dense(get("attn_v.bias")?)?,
                out: QMatMul::from_qtensor(get("attn_output.weight")?)?,
                attn_norm: dense(get("attn_norm.weight")?)?,
                gate: QMatMul::from_qtensor(get("ffn_gate.weight")?)?,
                up: QMatMul::from_qtensor(get("ffn_up.weight")?)?,
                down: QMatMul::from_qtensor(get("ffn_down.weight")?)?,
                ffn_norm: dense(get("ffn_norm.weight")?)?,
            });
        }
        let inv: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
            .collect();
        let inv = Tensor::from_vec(inv, (1, head_dim / 2), dev)?;
        let positions = Tensor::arange(0u32, context as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((context, 1))?;
        let angles = positions.matmul(&inv)?;
        Ok(Qwen2 {
            embed,
            layers,
            norm,
            output,
            cos: angles.cos()?,
            sin: angles.sin()?,
            heads,
            kv_heads,
            head_dim,
            eps,
            context,
        })
    }

    /// Feeds `tokens` after what `cache` holds; the logits for the token after the last.
    pub fn forward(&self, tokens: &[u32], cache: &mut Cache) -> Result<Tensor> {
        let (seq, start) = (tokens.len(), cache.len);
        if seq == 0 {
            candle_core::bail!("nothing to feed");
        }
        if start + seq > self.context {
            candle_core::bail!(
                "{} tokens do not fit a context of {}",
                start + seq,
                self.context
            );
        }
        let dev = &Device::Cpu;
        let mut x = self.embed.rows(tokens)?.unsqueeze(0)?;
        let mask = (seq > 1)
            .then(|| {
                let total = start + seq;
                let m: Vec<f32> = (0..seq)
                    .flat_map(|i| {
                        (0..total).map(move |j| {
                            if j > start + i {
                                f32::NEG_INFINITY
                            } else {
                                0.0
                            }
                        })
                    })
                    .collect();
                Tensor::from_vec(m, (1, 1, seq, total), dev)
            })
            .transpose()?;
        let cos = self.cos.narrow(0, start, seq)?;
        let sin = self.sin.narrow(0, start, seq)?;
        let mut kv = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, self.eps as f32)?;
            let heads = |w: &QMatMul, b: &Tensor, n: usize| -> Result<Tensor> {
                w.forward(&h)?
                    .broadcast_add(b)?
                    .reshape((1, seq, n, self.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = heads(&layer.q, &layer.q_bias, self.heads)?;
            let k = heads(&layer.k, &layer.k_bias, self.kv_heads)?;
            let v = heads(&layer.v, &layer.v_bias, self.kv_heads)?;
            let q = candle_nn::rotary_emb::rope(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&k, &cos, &sin)?;
            let (k, v) = match cache.kv.get(i) {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                None => (k, v),
            };
            kv.push((k.clone(), v.clone()));
            let group = self.heads / self.kv_heads;
            let (k, v) = (repeat_kv(&k, group)?, repeat_kv(&v, group)?);
            let mut att = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
            if let Some(mask) = &mask {
                att = att.broadcast_add(mask)?;
            }
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y =
                att.matmul(&v)?
                    .transpose(1, 2)?
                    .reshape((1, seq, self.heads * self.head_dim))?;
            x = (x + layer.out.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.eps as f32)?;
            let gated =
                (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&gated)?)?;
        }
        cache.kv = kv;
        cache.len = start + seq;
        let last = x.narrow(1, seq - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, self.eps as f32)?;
        self.output.forward(&last)?.flatten_all()
    }
}

/// Each key/value head repeated for the `group` query heads that share it.
fn repeat_kv(x: &Tensor, group: usize) -> Result<Tensor> {
    if group == 1 {
        return Ok(x.clone());
    }
    let (b, n, seq, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, n, group, seq, d))?
        .reshape((b, n * group, seq, d))
}
